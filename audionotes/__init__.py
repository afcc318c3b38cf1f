"""The audionotes command-line client."""
