"""MNIST-family data: the raw files checked, decoded once into tensors, sliced into batches,
augmented on the device; and a user's own digit images in MNIST's convention."""
