"""The lowest layer: skeleton layouts, the model contract, keypoint sequences and classification metrics."""
