"""Recordings on disk: data sets and their splits, importers of other keypoint formats, and model windows."""
