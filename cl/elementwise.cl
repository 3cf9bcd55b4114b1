/*
 * elementwise.cl: (being written) basic tensor arithmetic, reductions and bias.
 */
