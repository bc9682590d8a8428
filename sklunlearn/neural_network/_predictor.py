"""A fully connected network with a scalar output as a forgetting-core predictor.

``f = g(x; theta)``: hidden layers ``h_l = a(h_{l-1} W_l + b_l)`` and a linear
output ``f = h_L W_out + b_out``. ``theta`` holds every layer's ``W`` (row-major)
then ``b``, layer by layer, so ``coefs_`` and ``intercepts_`` (scikit-learn's
``MLPRegressor`` layout) are views of it. The Jacobian products are
back-propagation: ``J' v`` runs the backward pass with ``v`` at the output;
``J`` and ``J' diag(c) J`` run it with ones and fill a buffer of one row block
(Numba), never an ``(n, p)`` array.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._numba.mlp import (
    check_finite,
    jacobian_columns,
    mirror_upper,
    pair_products,
    scaled_jacobian,
    scatter_kronecker_gram,
)
from ..unlearning import Predictor
from ._training import blas_threads, one_blas_thread

__all__ = ["ACTIVATIONS", "MLPPredictor"]

# Entries of a block's buffers (4 MiB): one per worker stays in the last-level cache
# between its fill and BLAS's products, and the blocks are tall enough for BLAS.
JACOBIAN_BLOCK_ENTRIES = 2**19


def _block_rows(entries_per_row):
    """Rows per block: at most 4096, at least 256, within the entry budget."""
    return max(256, min(4096, JACOBIAN_BLOCK_ENTRIES // entries_per_row))


def _tanh(z):
    return np.tanh(z, out=z)


def _logistic(z):
    # 1 / (1 + e^-z), written through tanh so that no exp overflows
    return np.multiply(np.tanh(np.multiply(z, 0.5, out=z), out=z) + 1.0, 0.5, out=z)


def _relu(z):
    return np.maximum(z, 0.0, out=z)


def _identity(z):
    return z


# Each activation a and its derivative written in terms of its output h = a(z).
ACTIVATIONS = {
    "tanh": (_tanh, lambda h: 1.0 - h * h),
    "logistic": (_logistic, lambda h: h * (1.0 - h)),
    "relu": (_relu, lambda h: (h > 0.0).astype(np.float64)),
    "identity": (_identity, lambda h: np.ones_like(h)),
}


class MLPPredictor(Predictor):
    """A fully connected network with one output, as a :class:`Predictor`.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, 1)``.
    activation : {'tanh', 'relu', 'logistic', 'identity'}, default='tanh'
        Activation of the hidden layers (the output is linear).
    """

    linear_in_parameters = False

    def __init__(self, layer_sizes, activation="tanh"):
        self.layer_sizes = tuple(int(size) for size in layer_sizes)
        if self.layer_sizes[-1] != 1 or len(self.layer_sizes) < 2:
            raise ValueError("layer_sizes must run from n_features to one output.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}.")
        self.activation = activation
        # (start of W, start of b, end of b) of each layer in theta
        self.offsets = []
        start = 0
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True):
            self.offsets.append((start, start + n_in * n_out, start + (n_in + 1) * n_out))
            start += (n_in + 1) * n_out
        self.n_weights = start

    def n_parameters(self, n_features=None):
        """``p``, the number of weights and biases."""
        return self.n_weights

    # ------------------------------------------------------------ layout
    def unpack(self, theta):
        """``(coefs, intercepts)``: per-layer views of ``theta`` (MLPRegressor's shapes).

        A batch of parameter vectors ``(S, p)`` gives ``(S, n_in, n_out)`` and
        ``(S, n_out)`` views.
        """
        coefs, intercepts = [], []
        batch = theta.shape[:-1]
        for (w, b, end), n_in, n_out in zip(
            self.offsets, self.layer_sizes[:-1], self.layer_sizes[1:], strict=True
        ):
            coefs.append(theta[..., w:b].reshape(*batch, n_in, n_out))
            intercepts.append(theta[..., b:end])
        return coefs, intercepts

    def output_slice(self):
        """Where the output layer's weights and bias sit in ``theta``."""
        return slice(self.offsets[-1][0], self.n_weights)

    # ------------------------------------------------------------ passes
    def forward(self, X, theta):
        """Every layer's input and the output: ``[X, h_1, ..., h_L]`` and ``f`` (n,).

        ``theta`` of shape (S, p), a batch of parameter vectors, gives
        activations of shape (S, n, n_out_l) and ``f`` of shape (S, n).
        """
        forward_activation = ACTIVATIONS[self.activation][0]
        coefs, intercepts = self.unpack(theta)
        inputs = [X]
        h = X
        for W, b in zip(coefs[:-1], intercepts[:-1], strict=True):
            h = forward_activation(h @ W + b[..., None, :])
            inputs.append(h)
        return inputs, (h @ coefs[-1])[..., 0] + intercepts[-1][..., :1]

    def backward(self, inputs, theta, v):
        """``df / dz`` at each layer's pre-activations, with ``v`` at the output.

        Returns a list of arrays of shape (n, n_out_l), first layer first
        ((S, n, n_out_l) for a batch ``theta`` of shape (S, p) and ``v`` (S, n)).
        """
        derivative = ACTIVATIONS[self.activation][1]
        coefs, _ = self.unpack(theta)
        delta = np.asarray(v, dtype=np.float64)[..., None]
        deltas = [delta]
        for W, h in zip(coefs[:0:-1], inputs[:0:-1], strict=True):
            # delta_{l-1} = (delta_l W_l') * a'(z_{l-1}), a' from the output h_{l-1}
            delta = (delta @ np.swapaxes(W, -1, -2)) * derivative(h)
            deltas.append(delta)
        return deltas[::-1]

    def gradient_from(self, inputs, deltas):
        """``J' v`` from a backward pass: ``h_{l-1}' delta_l`` and ``sum_i delta_l``.

        Shape (p,), or (S, p) from a batch's passes.
        """
        parts = []
        for h, delta in zip(inputs, deltas, strict=True):
            batch = delta.shape[:-2]
            parts.append((np.swapaxes(h, -1, -2) @ delta).reshape(*batch, -1))
            parts.append(delta.sum(axis=-2))
        return np.concatenate(parts, axis=-1)

    # ------------------------------------------------------------ Predictor
    def value(self, X, theta):
        """``f`` of the rows: shape (n,) for ``theta`` (p,), (n, S) for (p, S)."""
        if theta.ndim == 1:
            return self.forward(X, theta)[1]
        return np.column_stack([self.forward(X, column)[1] for column in theta.T])

    def vjp(self, X, theta, v):
        """``J' v`` by one forward and one backward pass, shape (p,)."""
        inputs, _ = self.forward(X, theta)
        return self.gradient_from(inputs, self.backward(inputs, theta, v))

    def jacobian(self, X, theta):
        """``J`` of a block of rows, shape (n, p)."""
        out = np.empty((X.shape[0], self.n_weights))
        return self._scaled_jacobian(X, theta, np.ones(X.shape[0]), out)

    def _scaled_jacobian(self, X, theta, scale, out):
        inputs, _ = self.forward(X, theta)
        deltas = self.backward(inputs, theta, np.ones(X.shape[0]))
        return scaled_jacobian(inputs, deltas, scale, out)

    def gauss_newton(self, X, theta, c):
        """``J' diag(c) J`` for non-negative ``c``, shape (p, p), by row blocks.

        Each block's Jacobian is filled transposed by a Numba kernel, never as
        an ``(n, p)`` array. A hidden layer's own diagonal block is one general
        product of its pair products (its Kronecker structure, see
        :mod:`sklunlearn._numba.mlp`); the blocks that couple a layer with the
        layers before it are products of the filled Jacobian columns; the upper
        triangle is mirrored once at the end. With BLAS allowed several
        threads, the blocks are dealt to as many worker threads, each running
        BLAS on one thread (many small products would otherwise each wait for
        BLAS's threads); the workers' sums are added at the end.
        """
        X = np.asarray(X, dtype=np.float64)
        c = np.asarray(c, dtype=np.float64)
        layout = _GramLayout(self)
        size = _block_rows(layout.entries_per_row)
        starts = range(0, X.shape[0], size)
        n_workers = max(1, min(blas_threads(), len(starts)))

        def accumulate(worker):
            buffer = np.empty(layout.entries_per_row * min(size, X.shape[0]))
            sums, scratch = layout.zeros()
            for start in starts[worker::n_workers]:
                rows = slice(start, start + size)
                block = layout.fill(X[rows], theta, c[rows], buffer)
                layout.accumulate(block, sums, scratch)
            return sums

        if n_workers == 1:
            return layout.finish(accumulate(0))
        with one_blas_thread(), ThreadPoolExecutor(max_workers=n_workers) as pool:
            sums, *others = pool.map(accumulate, range(n_workers))
        for other in others:
            for total, term in zip(sums, other, strict=True):
                total += term
        return layout.finish(sums)

    def moments(self, X, posterior):
        """Mean and linearised variance ``J Sigma J'`` of ``f`` per row."""
        mean = self.value(X, posterior.mean)
        variance = np.empty(X.shape[0])
        size = _block_rows(self.n_weights)
        buffer = np.empty((min(size, X.shape[0]), self.n_weights))
        for start in range(0, X.shape[0], size):
            rows = slice(start, start + size)
            n_rows = X[rows].shape[0]
            J = self._scaled_jacobian(X[rows], posterior.mean, np.ones(n_rows), buffer)
            variance[rows] = posterior.predictive_variance(J)
        return mean, variance

    # ------------------------------------------------------------ L-CODEC hooks
    def candidate_values(self, X, theta):
        """One quantity per candidate group: every hidden unit's activation, (n, G).

        Units of the first hidden layer come first, then the next layer's.
        """
        inputs, _ = self.forward(X, theta)
        return np.hstack(inputs[1:]) if len(inputs) > 1 else np.empty((X.shape[0], 0))

    def candidate_indices(self, theta):
        """For each hidden unit, the indices in ``theta`` of its incoming weights and bias.

        A list of ``G`` int arrays, in the order of :meth:`candidate_values`.
        """
        groups = []
        for (w, b, _), n_in, n_out in zip(
            self.offsets[:-1], self.layer_sizes[:-2], self.layer_sizes[1:-1], strict=True
        ):
            for k in range(n_out):
                weights = w + np.arange(n_in) * n_out + k
                groups.append(np.append(weights, b + k).astype(np.intp))
        return groups


class _GramLayout:
    """Where each term of a Gauss-Newton block lives, for one network.

    Per row block: ``columns`` ``(p, n)`` holds ``(diag(sqrt(c)) J)'``; each
    hidden layer with at least two units also gets its input pairs ``(j <= j')``
    of ``h~ = [h, 1]`` and its scaled delta pairs ``c_i delta_ik delta_ik'``
    ``(k <= k')``, whose product is its diagonal block (a layer with one output
    has no pairs to save: its block comes from the columns, as every block that
    couples two layers does). The sums are a list: the ``(p, p)`` matrix (upper
    triangle outside the pair blocks), then one pair product per such layer.
    """

    def __init__(self, predictor):
        self.n_weights = predictor.n_weights
        self.predictor = predictor
        self.layers = []  # (start, end, n_in + 1, n_out, uses pairs)
        for (start, _, end), n_in, n_out in zip(
            predictor.offsets,
            predictor.layer_sizes[:-1],
            predictor.layer_sizes[1:],
            strict=True,
        ):
            self.layers.append((start, end, n_in + 1, n_out, n_out >= 2))
        self.pair_shapes = [
            (a * (a + 1) // 2, b * (b + 1) // 2)
            for _, _, a, b, pairs in self.layers
            if pairs
        ]
        self.entries_per_row = self.n_weights + sum(sum(s) for s in self.pair_shapes)

    def zeros(self):
        """Zero sums and space for one block's products (``(sums, scratch)``)."""
        sums = [np.zeros((self.n_weights, self.n_weights))]
        sums += [np.zeros(shape) for shape in self.pair_shapes]
        scratch = [np.empty_like(pair_gram) for pair_gram in sums[1:]]
        for start, end, _, _, uses_pairs in self.layers:
            scratch.append(np.empty((start if uses_pairs else end, end - start)))
        return sums, scratch

    def fill(self, X, theta, c, buffer):
        """One block's columns and pair products, as views of ``buffer``."""
        n = X.shape[0]
        inputs, _ = self.predictor.forward(X, theta)
        deltas = self.predictor.backward(inputs, theta, np.ones(n))
        augmented = [np.vstack([h.T, np.ones((1, n))]) for h in inputs]
        deltas = [np.ascontiguousarray(delta.T) for delta in deltas]
        sizes = [self.n_weights] + [size for shape in self.pair_shapes for size in shape]
        views = np.split(buffer[: n * sum(sizes)], np.cumsum(sizes[:-1]) * n)
        views = [view.reshape(-1, n) for view in views]
        columns = jacobian_columns(augmented, deltas, np.sqrt(c), views[0])
        pairs, ones = [], np.ones(n)
        for h, delta, (*_, uses_pairs) in zip(augmented, deltas, self.layers, strict=True):
            if uses_pairs:
                first = 1 + 2 * len(pairs)
                pairs.append(
                    (
                        pair_products(h, ones, views[first]),
                        pair_products(delta, c, views[first + 1]),
                    )
                )
        return columns, pairs

    def accumulate(self, block, sums, scratch):
        """Add one block's products to ``sums``."""
        columns, pairs = block
        gram, pair_grams = sums[0], sums[1:]
        for (inputs_pairs, delta_pairs), pair_gram, product in zip(
            pairs, pair_grams, scratch, strict=False
        ):
            pair_gram += np.matmul(inputs_pairs, delta_pairs.T, out=product)
        for (start, end, *_), product in zip(
            self.layers, scratch[len(pairs) :], strict=True
        ):
            if product.shape[0]:  # the rows above (or through) the diagonal block
                above = product.shape[0]
                gram[:above, start:end] += np.matmul(
                    columns[:above], columns[start:end].T, out=product
                )

    def finish(self, sums):
        """Scatter the pair blocks, mirror the upper triangle: the full matrix."""
        gram, pair_grams = sums[0], sums[1:]
        pairing = [layer for layer in self.layers if layer[4]]
        for (start, _, a, b, _), pair_gram in zip(pairing, pair_grams, strict=True):
            scatter_kronecker_gram(pair_gram, a, b, start, gram)
        # a non-finite term or an overflowing product leaves a non-finite sum
        check_finite(gram)
        return mirror_upper(gram)
