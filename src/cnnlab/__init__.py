"""cnnlab: from a folder of images to a trained, explained convolutional network."""

__version__ = "0.1.0"
