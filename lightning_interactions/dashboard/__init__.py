"""The Interactions dashboard: a TensorBoard tab and the same page as one self-contained HTML file."""
