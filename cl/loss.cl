/*
 * loss.cl: softmax, log-softmax, cross-entropy and mean squared error (being written).
 */
