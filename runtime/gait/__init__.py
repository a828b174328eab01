"""Gait code shared by training and the kiosk: keypoint cleaning and gait features (numpy only)."""
