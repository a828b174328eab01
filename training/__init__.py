"""The research workstation: synthetic gait data, the dual-stream model's training, evaluation and Grad-CAM.

Every model trained here is trained on synthetic data and is not clinically valid.
"""
