"""Using a trained model: what a prediction needs (preprocessing.py), reading new inputs
(inputs.py), running the model on them (predictor.py) and the mode=predict job (job.py).

Importing this package imports nothing heavy; its modules import torch.
"""
