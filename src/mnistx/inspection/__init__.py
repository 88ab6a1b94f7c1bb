"""Looking at what a trained model does: class probabilities, and the pictures drawn from
them (image grids, the confusion matrix, learning curves), for runs, eval and predict."""
