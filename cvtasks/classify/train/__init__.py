"""Training a classifier on your own folders; a run folder is a weights spec for every command."""
