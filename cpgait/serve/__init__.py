"""Serving the classifier from NVIDIA Triton: a model repository for it (`cpgait export --triton`)."""
