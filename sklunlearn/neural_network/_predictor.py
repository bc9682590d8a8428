"""A fully connected network with a scalar output as a forgetting-core predictor.

``f = g(x; theta)``: hidden layers ``h_l = a(h_{l-1} W_l + b_l)`` and a linear
output ``f = h_L W_out + b_out``. ``theta`` holds every layer's ``W`` (row-major)
then ``b``, layer by layer, so ``coefs_`` and ``intercepts_`` (scikit-learn's
``MLPRegressor`` layout) are views of it. The Jacobian products are
back-propagation: ``J' v`` runs the backward pass with ``v`` at the output;
``J`` and ``J' diag(c) J`` run it with ones and fill a buffer of one row block
(Numba), never an ``(n, p)`` array. The MAP objective's ``J' (beta w r)``
runs both passes row block by row block in reused buffers
(:meth:`MLPPredictor.squared_error`).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.linalg.blas import dgemm

from .._numba.mlp import (
    activate,
    check_finite,
    jacobian_columns,
    mirror_upper,
    pair_products,
    scaled_jacobian,
    scatter_kronecker_gram,
)
from ..unlearning import Predictor
from ..utils._blas import blas_threads, one_blas_thread

__all__ = ["ACTIVATIONS", "MLPPredictor"]

# Entries of a block's buffers (2 MiB): one per worker stays in the last-level cache
# between its fill and BLAS's products, and the blocks are tall enough for BLAS.
JACOBIAN_BLOCK_ENTRIES = 2**18


# Entries of a fit block's buffers (1 MiB), sized for one core's L2 cache so that
# a block stays there from the forward pass through the gradient's products.
FIT_BLOCK_ENTRIES = 2**17


def _fit_block_rows(layer_sizes):
    """Rows per block of :meth:`MLPPredictor.squared_error`: within the entry budget.

    Per row: the input, each hidden layer's activations and derivatives, and
    :func:`activate`'s two temporaries of the widest layer.
    """
    hidden = layer_sizes[1:-1]
    per_row = layer_sizes[0] + 2 * sum(hidden) + 2 * max(hidden, default=0) + 2
    return max(64, FIT_BLOCK_ENTRIES // per_row)


def _block_rows(entries_per_row):
    """Rows per block: at most 4096, at least 128, within the entry budget."""
    return max(128, min(4096, JACOBIAN_BLOCK_ENTRIES // entries_per_row))


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
            h = h @ W
            h += b[..., None, :]
            h = forward_activation(h)
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
            delta = delta @ np.swapaxes(W, -1, -2)
            delta *= derivative(h)
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

    def squared_error(self, X, y, weights):
        """The weighted squared error of fixed rows and its gradient, by row blocks.

        Returns a function ``(theta, beta) -> (sum_i w_i r_i^2, J' (beta w r))``
        with ``r = f - y``, shapes ``()`` and ``(p,)``: the forward pass, the
        backward pass and the gradient's sums run block by block in buffers that
        the function owns, so each call allocates only its gradient.
        """
        return _SquaredError(self, X, y, weights)

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

        Each block's passes run transposed (one column per row; the activation
        and its derivative by one Numba kernel) and its Jacobian is filled
        transposed by another, never as an ``(n, p)`` array; each product runs
        right after the fill of its operands. A hidden layer's own diagonal
        block is one general product of its pair products (its Kronecker
        structure, see :mod:`sklunlearn._numba.mlp`); the blocks that couple a
        layer with the layers before it are products of the filled Jacobian
        columns; the upper triangle is mirrored once at the end. With BLAS allowed several
        threads, the blocks are dealt to as many worker threads, each running
        BLAS on one thread (many small products would otherwise each wait for
        BLAS's threads); the workers' sums are added at the end.
        """
        X = np.asarray(X, dtype=np.float64)
        c = np.asarray(c, dtype=np.float64)
        layout = _GramLayout(self)
        weights = layout.weights(theta)
        size = _block_rows(layout.entries_per_row)
        starts = range(0, X.shape[0], size)
        n_workers = max(1, min(blas_threads(), len(starts)))

        def accumulate(worker):
            buffer = np.empty(layout.entries_per_row * min(size, X.shape[0]))
            sums, terms = layout.zeros(), None
            for start in starts[worker::n_workers]:
                rows = slice(start, start + size)
                n_rows = X[rows].shape[0]
                if terms is None or terms[0].shape[1] != n_rows:  # the short last block
                    terms = layout.terms(buffer, n_rows)
                layout.add_block(X[rows], weights, c[rows], terms, sums)
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


class _SquaredError:
    """:meth:`MLPPredictor.squared_error` of fixed rows, with its block buffers.

    Per block, each hidden layer's activations and derivatives are written in
    place (the activation and its derivative in one call, :func:`activate`),
    and the backward pass reuses them: a layer's derivatives become its deltas,
    and once a layer's gradient is added its activations hold the next
    product ``delta_{l+1} W_{l+1}'``. The blocks stay in cache from the forward
    pass to the gradient's products.
    """

    def __init__(self, predictor, X, y, weights):
        self.predictor = predictor
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        hidden = predictor.layer_sizes[1:-1]
        self.rows = _fit_block_rows(predictor.layer_sizes)
        size = min(self.rows, self.X.shape[0])
        self.activations = [np.empty((size, units)) for units in hidden]
        self.derivatives = [np.empty((size, units)) for units in hidden]
        self.residual, self.scaled = np.empty(size), np.empty(size)

    def __call__(self, theta, beta):
        coefs, intercepts = self.predictor.unpack(theta)
        gradient = np.zeros(self.predictor.n_weights)
        coef_sums, intercept_sums = self.predictor.unpack(gradient)
        error = 0.0
        for start in range(0, self.X.shape[0], self.rows):
            rows = slice(start, start + self.rows)
            error += self._add_block(
                rows, coefs, intercepts, beta, coef_sums, intercept_sums
            )
        return error, gradient

    def _add_block(self, rows, coefs, intercepts, beta, coef_sums, intercept_sums):
        """Add one block's ``J' (beta w r)`` to the sums; its ``sum_i w_i r_i^2``."""
        X, y, weights = self.X[rows], self.y[rows], self.weights[rows]
        n = X.shape[0]
        activation = self.predictor.activation
        activations = [h[:n] for h in self.activations]
        derivatives = [d[:n] for d in self.derivatives]
        inputs = [X, *activations]
        for W, b, h, z, d in zip(
            coefs[:-1], intercepts[:-1], inputs[:-1], activations, derivatives, strict=True
        ):
            np.matmul(h, W, out=z)
            z += b
            activate(activation, z, d)
        residual = np.matmul(inputs[-1], coefs[-1][:, 0], out=self.residual[:n])
        residual += intercepts[-1][0]
        residual -= y
        weighted = np.multiply(weights, residual, out=self.scaled[:n])
        error = float(weighted @ residual)
        weighted *= beta
        # back-propagation, output first: delta_{l-1} = (delta_l W_l') * a'(z_{l-1})
        delta = weighted[:, None]
        for layer in range(len(coefs) - 1, -1, -1):
            coef_sums[layer] += inputs[layer].T @ delta
            intercept_sums[layer] += delta.sum(axis=0)
            if not layer:
                break
            W, product = coefs[layer], inputs[layer]
            if W.shape[1] == 1:  # an outer product: exact as a broadcast, slow in BLAS
                np.multiply(delta, W[:, 0], out=product)
            else:
                np.matmul(delta, W.T, out=product)
            delta = np.multiply(product, derivatives[layer - 1], out=derivatives[layer - 1])
        return error


class _GramLayout:
    """Where each term of a Gauss-Newton block lives, for one network.

    Per row block, one buffer holds, one column per row: each layer's input
    ``h~ = [h, 1]`` and its deltas (:meth:`passes`), ``columns`` ``(p, n)`` =
    ``(diag(sqrt(c)) J)'``, and for each hidden layer with at least two units
    its input pairs ``(j <= j')`` of ``h~`` and its scaled delta pairs
    ``c_i delta_ik delta_ik'`` ``(k <= k')``, whose product is its diagonal block
    (a layer with one output has no pairs to save: its block comes from the
    columns, as every block that couples two layers does). The sums are a list:
    one pair product per such layer, then each layer's columns of the upper
    triangle outside its pair block, ``(rows above, width)``.
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
        # rows of each term per data row: inputs, deltas, columns, pairs
        self.term_rows = [a for _, _, a, _, _ in self.layers]
        self.term_rows += [b for _, _, _, b, _ in self.layers]
        self.term_rows += [self.n_weights, *(size for s in self.pair_shapes for size in s)]
        self.entries_per_row = sum(self.term_rows)

    def zeros(self):
        """Zero sums (the pair products, then each layer's upper columns)."""
        sums = [np.zeros(shape) for shape in self.pair_shapes]
        for start, end, _, _, uses_pairs in self.layers:
            sums.append(np.zeros((start if uses_pairs else end, end - start)))
        return sums

    def terms(self, buffer, n):
        """Views of ``buffer`` for a block of ``n`` rows, one ``(rows, n)`` per term.

        The rows of ones that end each layer's input, and the output's deltas
        (ones), are written here, once.
        """
        views = np.split(
            buffer[: n * self.entries_per_row], np.cumsum(self.term_rows[:-1]) * n
        )
        views = [view.reshape(-1, n) for view in views]
        for h in views[: len(self.layers)]:
            h[-1] = 1.0
        views[2 * len(self.layers) - 1][:] = 1.0
        return views

    def weights(self, theta):
        """Each layer's weights and bias, ``[W_l; b_l]``, as ``(n_in + 1, n_out)`` views."""
        return [theta[start:end].reshape(a, b) for start, end, a, b, _ in self.layers]

    def add_block(self, X, weights, c, terms, sums):
        """Fill one block's terms in ``terms`` and add its products to ``sums``.

        Each product runs right after the fill of its operands, while they are
        still in cache: the columns and the upper blocks first, then each
        layer's pairs and their product.
        """
        n_layers, n_pairs = len(self.layers), len(self.pair_shapes)
        augmented, deltas = terms[:n_layers], terms[n_layers : 2 * n_layers]
        self.passes(X, weights, augmented, deltas)
        columns = jacobian_columns(augmented, deltas, np.sqrt(c), terms[2 * n_layers])
        for (start, end, *_), upper in zip(self.layers, sums[n_pairs:], strict=True):
            if upper.shape[0]:  # the rows above (or through) the diagonal block
                _add_product(upper, columns[: upper.shape[0]], columns[start:end])
        pair_views, pair_grams = iter(terms[2 * n_layers + 1 :]), iter(sums[:n_pairs])
        ones = augmented[0][-1]
        for h, delta, (*_, uses_pairs) in zip(augmented, deltas, self.layers, strict=True):
            if uses_pairs:
                inputs_pairs = pair_products(h, ones, next(pair_views))
                delta_pairs = pair_products(delta, c, next(pair_views))
                _add_product(next(pair_grams), inputs_pairs, delta_pairs)

    def passes(self, X, weights, augmented, deltas):
        """The forward and backward passes of a block, one column per row.

        Fills ``augmented[l]`` with layer ``l``'s input ``[h_{l-1}; 1]`` and
        ``deltas[l]`` with ``df / dz_l`` (the rows of ones are already there, from
        :meth:`terms`): ``z_l = [W_l; b_l]' h~_{l-1}``, the activation and its
        derivative in one call (:func:`activate`), then
        ``delta_{l-1} = a'(z_{l-1}) * (W_l delta_l)``.
        """
        augmented[0][:-1] = X.T
        for h, delta, W, before in zip(
            augmented[1:], deltas[:-1], weights[:-1], augmented[:-1], strict=True
        ):
            activate(self.predictor.activation, np.matmul(W.T, before, out=h[:-1]), delta)
        if len(deltas) > 1:  # the output's deltas are ones: W_out delta_out = W_out
            deltas[-2] *= weights[-1][:-1]
        for layer in range(len(deltas) - 3, -1, -1):
            deltas[layer] *= weights[layer + 1][:-1] @ deltas[layer + 1]

    def finish(self, sums):
        """Place the pair blocks and upper columns, mirror: the full matrix."""
        gram = np.empty((self.n_weights, self.n_weights))
        pairing = [layer for layer in self.layers if layer[4]]
        for (start, end, *_), upper in zip(self.layers, sums[len(pairing) :], strict=True):
            gram[: upper.shape[0], start:end] = upper
        for (start, _, a, b, _), pair_gram in zip(pairing, sums, strict=False):
            scatter_kronecker_gram(pair_gram, a, b, start, gram)
        mirror_upper(gram)
        # a non-finite term or an overflowing product leaves a non-finite sum
        check_finite(gram)
        return gram


def _add_product(total, A, B):
    """``total += A B'`` in place, by BLAS on Fortran views (no copies).

    ``total`` (m, k) and ``A`` (m, n), ``B`` (k, n) are C-contiguous: ``total'``
    is a Fortran array that ``dgemm`` updates as ``B A' + total'``.
    """
    result = dgemm(1.0, B.T, A.T, 1.0, total.T, trans_a=True, overwrite_c=True)
    if not np.shares_memory(result, total):  # a BLAS wrapper that copied ``total``
        total[...] = result.T
