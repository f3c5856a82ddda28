"""The small data sets and models shared by the demo, the examples and the tests."""
