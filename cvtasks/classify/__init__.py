"""classify: torchvision classifiers (predictor, video aggregation), `eval classify` and `train`."""
