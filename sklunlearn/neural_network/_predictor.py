"""A fully connected network with a scalar output as a forgetting-core predictor.

``f = g(x; theta)``: hidden layers ``h_l = a(h_{l-1} W_l + b_l)`` and a linear
output ``f = h_L W_out + b_out``. ``theta`` holds every layer's ``W`` (row-major)
then ``b``, layer by layer, so ``coefs_`` and ``intercepts_`` (scikit-learn's
``MLPRegressor`` layout) are views of it. The Jacobian products are
back-propagation: ``J' v`` runs the backward pass with ``v`` at the output;
``J`` and ``J' diag(c) J`` run it with ones and fill a ``(block, p)`` buffer
(Numba), never an ``(n, p)`` array.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._numba.mlp import add_gram, scaled_jacobian
from ..unlearning import Predictor

__all__ = ["ACTIVATIONS", "MLPPredictor"]

# Entries of a Jacobian block (4 MiB): two of them, one filled while BLAS reads the
# other, stay in cache, and a thousand rows are tall enough for BLAS's rank-k update.
JACOBIAN_BLOCK_ENTRIES = 2**19


def _block_rows(n_weights):
    """Rows per Jacobian block: at most 4096, at least 256, within the entry budget."""
    return max(256, min(4096, JACOBIAN_BLOCK_ENTRIES // n_weights))


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
        """``(coefs, intercepts)``: per-layer views of ``theta`` (MLPRegressor's shapes)."""
        coefs, intercepts = [], []
        for (w, b, end), n_in, n_out in zip(
            self.offsets, self.layer_sizes[:-1], self.layer_sizes[1:], strict=True
        ):
            coefs.append(theta[w:b].reshape(n_in, n_out))
            intercepts.append(theta[b:end])
        return coefs, intercepts

    def output_slice(self):
        """Where the output layer's weights and bias sit in ``theta``."""
        return slice(self.offsets[-1][0], self.n_weights)

    # ------------------------------------------------------------ passes
    def forward(self, X, theta):
        """Every layer's input and the output: ``[X, h_1, ..., h_L]`` and ``f`` (n,)."""
        forward_activation = ACTIVATIONS[self.activation][0]
        coefs, intercepts = self.unpack(theta)
        inputs = [X]
        h = X
        for W, b in zip(coefs[:-1], intercepts[:-1], strict=True):
            h = forward_activation(h @ W + b)
            inputs.append(h)
        return inputs, (h @ coefs[-1])[:, 0] + intercepts[-1][0]

    def backward(self, inputs, theta, v):
        """``df / dz`` at each layer's pre-activations, with ``v`` at the output.

        Returns a list of arrays of shape (n, n_out_l), first layer first.
        """
        derivative = ACTIVATIONS[self.activation][1]
        coefs, _ = self.unpack(theta)
        delta = np.asarray(v, dtype=np.float64).reshape(-1, 1)
        deltas = [delta]
        for W, h in zip(coefs[:0:-1], inputs[:0:-1], strict=True):
            # delta_{l-1} = (delta_l W_l') * a'(z_{l-1}), a' from the output h_{l-1}
            delta = (delta @ W.T) * derivative(h)
            deltas.append(delta)
        return deltas[::-1]

    def gradient_from(self, inputs, deltas):
        """``J' v`` from a backward pass: ``h_{l-1}' delta_l`` and ``sum_i delta_l``."""
        parts = []
        for h, delta in zip(inputs, deltas, strict=True):
            parts.append((h.T @ delta).ravel())
            parts.append(delta.sum(axis=0))
        return np.concatenate(parts)

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

        A worker thread runs the passes and fills the next block of
        ``diag(sqrt(c)) J`` (NumPy and the Numba kernel release the GIL) while
        BLAS accumulates the current one, so the Jacobian costs little beyond
        the rank-k updates themselves.
        """
        X = np.asarray(X, dtype=np.float64)
        scale = np.sqrt(np.asarray(c, dtype=np.float64))
        size = _block_rows(self.n_weights)
        blocks = [slice(start, start + size) for start in range(0, X.shape[0], size)]
        buffers = [np.empty((min(size, X.shape[0]), self.n_weights)) for _ in blocks[:2]]
        gram = np.zeros((self.n_weights, self.n_weights))
        scratch = np.empty_like(gram)

        def fill(i):
            rows = blocks[i]
            return self._scaled_jacobian(X[rows], theta, scale[rows], buffers[i % 2])

        if len(blocks) == 1:
            return add_gram(fill(0), gram, scratch)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(fill, 0)
            for i in range(len(blocks)):
                block = pending.result()
                if i + 1 < len(blocks):
                    pending = pool.submit(fill, i + 1)
                add_gram(block, gram, scratch)
        return gram

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
