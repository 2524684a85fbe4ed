"""Reading and writing preference data sets, and the embedded example data."""
