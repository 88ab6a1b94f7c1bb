"""The networks (an MLP and a small CNN, sized from config) and the training losses."""
