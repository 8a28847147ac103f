"""Recurrent layers over a window of steps, each as one function node.

Chainer spends its time on graph machinery, not arithmetic: a tanh layer
written with links is four nodes a step forward and more backward. Here an
Elman, LSTM or GRU layer runs a window of T steps as one FunctionNode with
a hand-written backward, and so does the embedding and the output layer.
The models of models.py run them in their fused mode (--fused), on the
parameters of their Chainer links (Linear, LSTM, StatefulGRU): the function
of the models' per-step path, in a few nodes a window.

The array code is written once for NumPy and CuPy (through xp). Backward is
not differentiable again: the nodes refuse double backprop.

Arrays that cross the nodes, for a window of T steps of B streams:

    x       (T * B, in)   the layer's input, step after step; or, with
                          ids (T * B,) int, a table (n_vocab, in) whose
                          rows ids are the input: the embedding's matrix
    hs      (T * B, H)    the layer's output at every step
    h0, c0  (B, H)        the state from before the window, if any

With ids, a layer projects the table once, (n_vocab, in) to (n_vocab, kH),
and picks the rows of the window's words, where the embedding followed by a
projection of every word would multiply (T * B, in) by (in, kH): T * B /
n_vocab times the work, both ways, which models.py spares where the window
holds more words than the vocabulary.

A stack of S seeds (study/stacked.py) runs through the same nodes: every
weight and bias gains a leading seed axis, W (S, H, in), and so do the
arrays between nodes, x (S, T * B, in), hs (S, T * B, H), h0 (S, B, H);
ids are shared. Inside a recurrent node each step holds the S * B streams
of all seeds side by side, step-major, so that one NumPy call per step
serves every seed; the products with the weights run per seed, each the
BLAS call of a lone run, and give its values bit for bit.
"""
import chainer_compat  # noqa: F401  (must precede chainer)

import threading

import chainer
from chainer import backend
import numpy

# Up to this vocabulary size the embedding's gradient is one product with a
# one-hot matrix, faster than a scatter-add at the tutorial's sizes; the
# product's cost grows with the vocabulary, the scatter-add's does not
# (docs/speed.md).
ONE_HOT_MAX_VOCAB = 128
ACTIVATIONS = ('tanh', 'relu')
# The links of chainer.links.StatefulGRU, in the order of GRUWindow's inputs.
GRU_LINKS = ('W_r', 'W_z', 'W', 'U_r', 'U_z', 'U')


def _variables(arrays):
    """Gradients as backward must return them: Variables, or None."""
    return tuple(None if array is None
                 else chainer.Variable(array, requires_grad=False)
                 for array in arrays)


def _refuse_double_backprop():
    if chainer.config.enable_backprop:
        raise NotImplementedError(
            'the fused nodes have no double backprop (their backward is '
            'written with arrays, not with differentiable functions)')


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError('activation must be one of {} (got {!r})'.format(
            ', '.join(ACTIVATIONS), activation))


def _output_grads(ghs, gh_last, shape, dtype, xp):
    """The gradient of the states hs (T, B, H), a new array: ghs's, or
    zeros, with the last state's (gh_last) added to the last step; for a
    stack, step-major (T, S * B, H)."""
    gh = xp.zeros(shape, dtype) if ghs is None else \
        _step_major(ghs.array, shape[0]).reshape(shape).copy()
    if gh_last is not None:
        gh[-1] += gh_last.array.reshape(shape[1:])
    return gh


def _sigmoid_in_place(x, xp):
    # chainer.functions.sigmoid's formula: it does not overflow.
    x *= 0.5
    xp.tanh(x, out=x)
    x *= 0.5
    x += 0.5


def _activate_in_place(x, activation, xp):
    if activation == 'tanh':
        xp.tanh(x, out=x)
    else:
        xp.maximum(x, 0, out=x)


def _derivative(hs, activation, xp):
    """act'(pre) written with act(pre) = hs."""
    if activation == 'tanh':
        d = hs * hs
        return xp.subtract(1, d, out=d)
    return hs > 0  # the convention of chainer.functions.relu


def _matmul(a, b, xp, out=None):
    """a b: for lone 2-D arrays xp.dot, as the lone path always did; over a
    leading seed axis, xp.matmul, one BLAS call per seed."""
    if a.ndim == 2 and b.ndim == 2:
        return xp.dot(a, b, out=out)
    return xp.matmul(a, b, out=out)


def _transposed(W):
    """W^T of a weight (out, in), or of each seed's (S, out, in)."""
    return W.swapaxes(-1, -2)


def _seeds(W):
    """The number of seeds of a stacked weight (S, out, in); None if lone."""
    return len(W) if W.ndim == 3 else None


def _step_major(a, n_steps):
    """(T * S * B, k), the seeds' streams side by side in each step, for a
    stack's a (S, T * B, k), a new array; a lone a (T * B, k) as it is."""
    if a.ndim == 2:
        return a
    seeds, _, k = a.shape
    return a.reshape(seeds, n_steps, -1, k).transpose(1, 0, 2, 3).reshape(
        -1, k)


def _seed_major(a, n_steps, seeds):
    """The inverse of _step_major: (S, T * B, k) for a (T * S * B, k), a new
    array; a lone a (seeds None) as it is."""
    if seeds is None:
        return a
    k = a.shape[-1]
    return a.reshape(n_steps, seeds, -1, k).transpose(1, 0, 2, 3).reshape(
        seeds, -1, k)


def _as_state(h, seeds):
    """A step's (S * B, H) as the state a node takes and gives: (S, B, H)
    for a stack, (B, H) as it is for a lone layer."""
    return h if seeds is None else h.reshape(seeds, -1, h.shape[-1])


def _add_bias(a, b, n_steps):
    """a (T * S * B, k), step-major, plus b (k,), or each seed's b (S, k),
    in place."""
    if b.ndim == 1:
        a += b
    else:
        by_seed = a.reshape(n_steps, len(b), -1, b.shape[-1])
        by_seed += b[:, None]


def _lateral(h, U_T, out, xp):
    """out (S * B, k) = h U_T for a step's h (S * B, H), with each seed's
    U_T (S, H, k), or a lone U_T (H, k)."""
    if U_T.ndim == 2:
        return xp.dot(h, U_T, out=out)
    seeds = len(U_T)
    return xp.matmul(h.reshape(seeds, -1, h.shape[-1]), U_T,
                     out=out.reshape(seeds, -1, out.shape[-1]))


def _scatter_rows(g, ids, n_rows, xp):
    """(n_rows, k): the rows of g (N, k) added up by their ids (N,); for a
    stack, g (S, N, k) gives (S, n_rows, k)."""
    if n_rows <= ONE_HOT_MAX_VOCAB:
        one_hot = xp.arange(n_rows, dtype=ids.dtype)[:, None] == ids
        return _matmul(one_hot.astype(g.dtype), g, xp)
    total = xp.zeros(g.shape[:-2] + (n_rows, g.shape[-1]), g.dtype)
    rows = ids if g.ndim == 2 else (slice(None), ids)
    if hasattr(xp.add, 'at'):
        xp.add.at(total, rows, g)
    else:  # a CuPy without ufunc.at
        import cupyx
        cupyx.scatter_add(total, rows, g)
    return total


def _n_rows(x, ids):
    """The number of rows of the input (of each seed): those of x, or one
    per id."""
    return x.shape[-2] if ids is None else len(ids)


def _project(x, W, ids, out, xp, n_steps):
    """out (N, k) = x W^T, or x[ids] W^T where x is a table (see above).

    For a stack, x (S, N, in) or a table (S, n_vocab, in) and W (S, k, in):
    out (T * S * B, k), step-major (see _step_major).
    """
    if W.ndim == 2:
        if ids is None:
            return xp.dot(x, W.T, out=out)
        return xp.take(xp.dot(x, W.T), ids, axis=0, out=out)
    projected = xp.matmul(x, _transposed(W))
    if ids is not None:
        projected = xp.take(projected, ids, axis=1)
    projected = _step_major(projected, n_steps)
    if out is None:
        return projected
    out[...] = projected
    return out


def _project_grads(g, x, W, ids, need_gx, xp):
    """The gradients of x and W for _project, g the gradient of out; for a
    stack, g (S, N, k) seed-major and the gradients seed-major too."""
    if ids is not None:
        g = _scatter_rows(g, ids, x.shape[-2], xp)
    return (_matmul(g, W, xp) if need_gx else None), _weight_grad(g, x, xp)


def _weight_grad(g, x, xp):
    """g^T x, of each seed for a stack: g (S, N, k), x (S, N, in)."""
    return _matmul(_transposed(g), x, xp)


# The order of the gates in LSTMWindow.backward, by chainer's index (a, i,
# f, o = 0, 1, 2, 3): o first, so that the gradients of the four gates and
# that of the cell lie in a row.
_LSTM_BACKWARD = (3, 0, 1, 2)


def _gate_major(w, order, out=None, seeds=None):
    """Rows (unit j, gate k) of chainer's LSTM, 4j + k, -> rows (gate,
    unit), the gates in the given order: into out, or a new array. With
    seeds, w has a leading seed axis."""
    xp = backend.get_array_module(w)
    lead = w.shape[:1] if seeds else ()
    h = w.shape[len(lead)] // 4
    rest = w.shape[len(lead) + 1:]
    out = xp.empty_like(w) if out is None else out
    by_gate = out.reshape(lead + (4, h) + rest)
    by_unit = w.reshape(lead + (h, 4) + rest)
    every = (slice(None),) * len(lead)
    for k, gate in enumerate(order):
        by_gate[every + (k,)] = by_unit[every + (slice(None), gate)]
    return out


def _unit_major(w, order, seeds=None):
    """The inverse of _gate_major, a new array."""
    xp = backend.get_array_module(w)
    lead = w.shape[:1] if seeds else ()
    h = w.shape[len(lead)] // 4
    rest = w.shape[len(lead) + 1:]
    out = xp.empty_like(w)
    by_unit = out.reshape(lead + (h, 4) + rest)
    by_gate = w.reshape(lead + (4, h) + rest)
    every = (slice(None),) * len(lead)
    for k, gate in enumerate(order):
        by_unit[every + (slice(None), gate)] = by_gate[every + (k,)]
    return out


# Work arrays that live for one call of LSTMWindow.forward or backward.
# NumPy hands large arrays back to the system when they are freed, and a
# new one costs a page fault every 4 KiB on first use (docs/speed.md). A
# buffer kept per thread and cut into views costs none after the first
# window. CuPy's memory pool already keeps its memory.
_work = threading.local()


def _work_arrays(xp, dtype, *shapes):
    """Uninitialized arrays of the shapes, valid until the next call."""
    if xp is not numpy:
        return [xp.empty(shape, dtype) for shape in shapes]
    sizes = []
    for shape in shapes:
        size = 1
        for n in (shape if isinstance(shape, tuple) else (shape,)):
            size *= n
        sizes.append(size)
    buffer = getattr(_work, 'buffer', None)
    if buffer is None or buffer.dtype != dtype or len(buffer) < sum(sizes):
        buffer = _work.buffer = numpy.empty(sum(sizes), dtype)
    arrays, start = [], 0
    for shape, size in zip(shapes, sizes):
        arrays.append(buffer[start:start + size].reshape(shape))
        start += size
    return arrays


class ElmanWindow(chainer.FunctionNode):
    """An Elman layer over a window of n_steps steps.

    h_t = act(x_t W^T + b + h_{t-1} U^T + c), where the first step has no
    lateral term (neither U nor c) when there is no h0.

    Inputs: x (T * B, in) or a table (see ids), W (H, in), b (H,), U
    (H, H), c (H,), then h0 (B, H) if has_h0. Outputs: hs (T * B, H), and
    h_last (B, H), a copy of the last step's, for the state that carries to
    the next window. ids (T * B,) int, if given, makes x a table whose rows
    ids are the input. A stack of seeds: see the module's docstring.
    """

    def __init__(self, n_steps, activation='tanh', has_h0=False, ids=None):
        check_activation(activation)
        self.n_steps = n_steps
        self.activation = activation
        self.has_h0 = has_h0
        self.ids = ids

    def forward(self, inputs):
        xp = backend.get_array_module(*inputs)
        x, W, b, U, c = inputs[:5]
        T, H, S = self.n_steps, W.shape[-2], _seeds(W)
        B = _n_rows(x, self.ids) // T * (S or 1)  # the streams of all seeds
        # Block t of states (B rows) is h_t; block 0 is h0, or zeros.
        states = xp.empty(((T + 1) * B, H), x.dtype)
        hs = states[B:]
        _project(x, W, self.ids, hs, xp, T)
        _add_bias(hs, b, T)
        h = states.reshape(T + 1, B, H)
        if self.has_h0:
            h[0] = inputs[5].reshape(B, H)
            first = 1  # the first block with a lateral term
        else:
            h[0] = 0
            _activate_in_place(h[1], self.activation, xp)
            first = 2
        if first <= T:
            _add_bias(h[first:].reshape(-1, H), c, T + 1 - first)
        lateral = xp.empty((B, H), x.dtype)
        U_T = _transposed(U)
        for t in range(first, T + 1):
            _lateral(h[t - 1], U_T, lateral, xp)
            h[t] += lateral
            _activate_in_place(h[t], self.activation, xp)
        self._x, self._W, self._U, self._states = x, W, U, states
        return _seed_major(hs, T, S), _as_state(h[T], S).copy()

    def backward(self, indexes, grad_outputs):
        _refuse_double_backprop()
        ghs, gh_last = grad_outputs
        x, W, U, states = self._x, self._W, self._U, self._states
        xp = backend.get_array_module(states)
        T, H, S = self.n_steps, W.shape[-2], _seeds(W)
        B = len(states) // (T + 1)
        hs = states[B:]
        # g becomes the gradient of the pre-activations, step by step.
        g3 = _output_grads(ghs, gh_last, (T, B, H), hs.dtype, xp)
        g = g3.reshape(T * B, H)
        derivative = _derivative(hs, self.activation, xp).reshape(T, B, H)
        first = 0 if self.has_h0 else 1  # the first step with a lateral term
        carry = xp.empty((B, H), g.dtype)  # the gradient of h_{t-1}
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                g3[t] += carry
            g3[t] *= derivative[t]
            if t >= first:
                _lateral(g3[t], U, carry, xp)
        g = _seed_major(g, T, S)
        gx, gW = _project_grads(g, x, W, self.ids, 0 in indexes, xp)
        gb = g.sum(axis=-2)
        gU = gc = None
        if first < T:
            g_lateral = g[..., first * B // (S or 1):, :]
            gU = _weight_grad(g_lateral, _seed_major(
                states[first * B:T * B], T - first, S), xp)
            gc = g_lateral.sum(axis=-2)
        gh0 = _as_state(carry, S) if self.has_h0 else None
        return _variables((gx, gW, gb, gU, gc, gh0)[:len(self.inputs)])


class LSTMWindow(chainer.FunctionNode):
    """chainer.links.LSTM over a window of n_steps steps.

    The gates come in chainer.functions.lstm's order: the row 4j + k of W,
    b and U belongs to gate k (a, i, f, o) of unit j. The first step has no
    lateral term when there is no h0; c0 is zeros when there is none.

    Inputs: x (T * B, in) or a table (see ElmanWindow), W (4H, in), b
    (4H,), U (4H, H), then c0 (B, H) if has_c0, then h0 (B, H) if has_h0.
    Outputs: hs (T * B, H), h_last and c_last (B, H), for the state that
    carries to the next window. A stack of seeds: see the module's
    docstring.

    The time loop is where the layer spends its time, in NumPy's overhead
    per call more than in arithmetic on (B, H) arrays: each step makes few
    calls, on contiguous arrays where it can.
    """

    def __init__(self, n_steps, has_c0=False, has_h0=False, ids=None):
        self.n_steps = n_steps
        self.has_c0 = has_c0
        self.has_h0 = has_h0
        self.ids = ids

    def forward(self, inputs):
        xp = backend.get_array_module(*inputs)
        x, W, b, U = inputs[:4]
        T, H, S = self.n_steps, U.shape[-1], _seeds(W)
        B = _n_rows(x, self.ids) // T * (S or 1)  # the streams of all seeds
        lead = W.shape[:-2]  # (S,) for a stack
        # Each step's gates are one (4, B, H) block, gates[t, k] gate k: the
        # element-wise calls run on contiguous (B, H) arrays, which NumPy
        # does faster than strided ones at this size (docs/speed.md). The
        # weights are cut by gate and transposed for it, W_f[k] (in, H) and
        # U_f[k] (H, H), and the sigmoid gates' halved: sigmoid(z) = 0.5
        # tanh(z / 2) + 0.5 (chainer.functions.sigmoid's formula), so one
        # tanh call covers the four gates. Halving is exact in floating
        # point.
        W_f, b_f, U_f, lateral, fc = _work_arrays(
            xp, x.dtype, lead + (4, W.shape[-1], H), lead + (4, 1, H),
            lead + (4, H, H), (4, B, H), (B, H))
        for w, w_f in ((W, W_f), (b, b_f), (U, U_f)):
            w_f[...] = xp.moveaxis(w.reshape(lead + (H, 4, -1)), -3, -1)
            w_f[..., 1:, :, :] *= 0.5
        if S is None:
            if self.ids is None:
                gates = xp.matmul(x.reshape(T, 1, B, -1), W_f)
            else:  # the rows of the projected table
                table = xp.matmul(x, W_f)
                gates = xp.ascontiguousarray(
                    table[:, self.ids.reshape(T, B)].transpose(1, 0, 2, 3))
            gates += b_f
        else:  # each seed's products, then step-major (T, 4, S * B, H)
            if self.ids is None:
                by_seed = xp.matmul(x.reshape(S, T, 1, B // S, -1),
                                    W_f[:, None])
            else:
                by_seed = xp.matmul(x[:, None], W_f)[
                    :, :, self.ids.reshape(T, B // S)].transpose(
                        0, 2, 1, 3, 4)
            gates = by_seed.transpose(1, 2, 0, 3, 4).reshape(T, 4, B, H)
            by_gate_seed = gates.reshape(T, 4, S, -1, H)
            by_gate_seed += b_f.swapaxes(0, 1)
        # The lateral product of a step, each seed's (S, 4, B, H) into the
        # step's (4, S * B, H).
        lateral_out = lateral if S is None else \
            lateral.reshape(4, S, -1, H).swapaxes(0, 1)
        h_by_seed = (lambda h_t: h_t) if S is None else \
            (lambda h_t: h_t.reshape(S, 1, -1, H))
        states = xp.empty(((T + 1) * B, H), x.dtype)  # h0 or zeros, h_1, ...
        cells = xp.empty(((T + 1) * B, H), x.dtype)  # c0 or zeros, c_1, ...
        h = states.reshape(T + 1, B, H)
        c = cells.reshape(T + 1, B, H)
        h[0] = inputs[-1].reshape(B, H) if self.has_h0 else 0
        c[0] = inputs[4].reshape(B, H) if self.has_c0 else 0
        tanh_c = xp.empty((T, B, H), x.dtype)
        for t in range(T):
            g = gates[t]
            if self.has_h0 or t > 0:
                xp.matmul(h_by_seed(h[t]), U_f, out=lateral_out)
                g += lateral
            xp.tanh(g, out=g)
            sigmoids = g[1:]
            sigmoids *= 0.5
            sigmoids += 0.5
            xp.multiply(g[0], g[1], out=c[t + 1])
            if self.has_c0 or t > 0:
                xp.multiply(g[2], c[t], out=fc)
                c[t + 1] += fc
            xp.tanh(c[t + 1], out=tanh_c[t])
            xp.multiply(g[3], tanh_c[t], out=h[t + 1])
        self._x, self._W, self._U = x, W, U
        self._gates, self._states, self._cells = gates, states, cells
        self._tanh_c = tanh_c
        return (_seed_major(states[B:], T, S), _as_state(h[T], S).copy(),
                _as_state(c[T], S).copy())

    def backward(self, indexes, grad_outputs):
        _refuse_double_backprop()
        ghs, gh_last, gc_last = grad_outputs
        x, W, U, gates = self._x, self._W, self._U, self._gates
        xp = backend.get_array_module(gates)
        T, B, H = self._tanh_c.shape
        S = _seeds(W)
        states, tanh_c = self._states, self._tanh_c
        c_prev = self._cells[:T * B].reshape(T, B, H)
        a, i, f, o = (gates[:, k] for k in range(4))
        # What does not depend on the recurrence, for the whole window:
        # sigmoid' = s (1 - s) of i, f, o at once; then, with gh the
        # gradient of h_t and gc that of c_t (gh dh_dc plus what c_{t+1}
        # passes back), the gradients of the pre-activations are
        # go = gh dh_do and those of a, i, f gc d[:, :, :3]; d[:, :, 3],
        # f, passes gc on to c_{t-1}.
        need_gx = 0 in indexes
        d_sigmoid, dh_dc, dh_do, d, gh, g, G, U_b, W_b, gU_g, gW_g = \
            _work_arrays(xp, x.dtype, (T, 3, B, H), (T, B, H), (T, B, H),
                         (T, B, 4, H), (T, B, H), (T, B, 5, H),
                         (T * B, 4 * H), U.shape, W.shape if need_gx else 0,
                         U.shape, W.shape)
        sigmoids = gates[:, 1:]
        xp.subtract(1, sigmoids, out=d_sigmoid)
        d_sigmoid *= sigmoids
        xp.multiply(tanh_c, tanh_c, out=dh_dc)
        xp.subtract(1, dh_dc, out=dh_dc)
        dh_dc *= o
        xp.multiply(tanh_c, d_sigmoid[:, 2], out=dh_do)
        xp.multiply(a, a, out=d[:, :, 0])
        xp.subtract(1, d[:, :, 0], out=d[:, :, 0])
        d[:, :, 0] *= i
        xp.multiply(a, d_sigmoid[:, 0], out=d[:, :, 1])
        xp.multiply(c_prev, d_sigmoid[:, 1], out=d[:, :, 2])
        d[:, :, 3] = f
        if ghs is None:
            gh[...] = 0
        else:
            gh[...] = _step_major(ghs.array, T).reshape(T, B, H)
        if gh_last is not None:
            gh[-1] += gh_last.array.reshape(B, H)
        # g[t] holds, for step t, the gradients of the pre-activations of
        # o, a, i, f (the order of U_b's rows), then that of c_{t-1}.
        gc_next = xp.zeros((B, H), x.dtype) if gc_last is None else \
            gc_last.array.reshape(B, H)
        _gate_major(U, _LSTM_BACKWARD, U_b, S)
        gc = xp.empty((B, H), x.dtype)
        carry = xp.empty((B, H), x.dtype)  # the gradient of h_{t-1}
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                gh[t] += carry
            xp.multiply(gh[t], dh_dc[t], out=gc)
            gc += gc_next
            xp.multiply(gh[t], dh_do[t], out=g[t, :, 0])
            xp.multiply(d[t], gc[:, None], out=g[t, :, 1:])
            gc_next = g[t, :, 4]
            if self.has_h0 or t > 0:
                _lateral(g[t, :, :4].reshape(B, 4 * H), U_b, carry, xp)
        # A contiguous copy: BLAS runs faster on it than on the strided g.
        G.reshape(T, B, 4, H)[...] = g[:, :, :4]
        G = _seed_major(G, T, S)
        # The weights' gradients come gate-major into work arrays, and only
        # their unit-major copies are new arrays: a new array costs a page
        # fault every 4 KiB (see _work_arrays).
        if need_gx:
            _gate_major(W, _LSTM_BACKWARD, W_b, S)
        if self.ids is None:
            gx = _matmul(G, W_b, xp) if need_gx else None
            _matmul(_transposed(G), x, xp, out=gW_g)
        else:
            gx, gW_g[...] = _project_grads(G, x, W_b, self.ids, need_gx, xp)
        gW = _unit_major(gW_g, _LSTM_BACKWARD, S)
        gb = _unit_major(G.sum(axis=-2), _LSTM_BACKWARD, S)
        first = 0 if self.has_h0 else 1  # the first step with a lateral term
        gU = None
        if first < T:
            _matmul(_transposed(G[..., first * B // (S or 1):, :]),
                    _seed_major(states[first * B:T * B], T - first, S), xp,
                    out=gU_g)
            gU = _unit_major(gU_g, _LSTM_BACKWARD, S)
        grads = [gx, gW, gb, gU]
        if self.has_c0:
            grads.append(_as_state(gc_next, S).copy())
        if self.has_h0:
            grads.append(_as_state(carry, S))
        return _variables(grads)


class GRUWindow(chainer.FunctionNode):
    """chainer.links.StatefulGRU over a window of n_steps steps.

    With h the previous state, x the input and each W and U with its bias:

        r = sigmoid(W_r x + U_r h),  z = sigmoid(W_z x + U_z h),
        h_bar = tanh(W x + U (r * h)),  h_new = z * h_bar + (1 - z) * h,

    and without a previous state z * h_bar, where neither r nor any U (nor
    its bias) takes part.

    Inputs: x (T * B, in) or a table (see ElmanWindow), W_r, b_r, W_z, b_z,
    W, b (each W (H, in)), U_r, c_r, U_z, c_z, U, c (each U (H, H)), then h0
    (B, H) if has_h0. Outputs: hs (T * B, H), and h_last (B, H), a copy of
    the last step's. A stack of seeds: see the module's docstring.
    """

    def __init__(self, n_steps, has_h0=False, ids=None):
        self.n_steps = n_steps
        self.has_h0 = has_h0
        self.ids = ids

    def forward(self, inputs):
        xp = backend.get_array_module(*inputs)
        x = inputs[0]
        W_r, b_r, W_z, b_z, W, b, U_r, c_r, U_z, c_z, U, c = inputs[1:13]
        T, H, S = self.n_steps, W.shape[-2], _seeds(W)
        B = _n_rows(x, self.ids) // T * (S or 1)  # the streams of all seeds
        W_x = xp.concatenate((W_r, W_z, W), axis=-2)
        U_rz = xp.concatenate((U_r, U_z), axis=-2)
        # pre[t, :, k]: the input part of r, z and h_bar at step t, which
        # become r, z and h_bar in place.
        pre = _project(x, W_x, self.ids, None, xp, T)
        _add_bias(pre, xp.concatenate((b_r, b_z, b), axis=-1), T)
        pre = pre.reshape(T, B, 3, H)
        states = xp.empty(((T + 1) * B, H), x.dtype)  # h0 or zeros, h_1, ...
        h = states.reshape(T + 1, B, H)
        r_h = xp.empty((T, B, H), x.dtype)  # r * h_{t-1}
        if self.has_h0:
            h[0] = inputs[13].reshape(B, H)
            first = 0  # the first step with a lateral term
        else:
            h[0] = 0
            g = pre[0]
            g[:, 0] = 0  # no r
            _sigmoid_in_place(g[:, 1], xp)
            xp.tanh(g[:, 2], out=g[:, 2])
            xp.multiply(g[:, 1], g[:, 2], out=h[1])
            r_h[0] = 0
            first = 1
        if first < T:
            _add_bias(pre[first:].reshape(-1, 3 * H),
                      xp.concatenate((c_r, c_z, c), axis=-1), T - first)
        lateral_rz = xp.empty((B, 2, H), x.dtype)
        lateral = xp.empty((B, H), x.dtype)
        U_rz_T, U_T = _transposed(U_rz), _transposed(U)
        for t in range(first, T):
            g = pre[t]
            _lateral(h[t], U_rz_T, lateral_rz.reshape(B, 2 * H), xp)
            g[:, :2] += lateral_rz
            _sigmoid_in_place(g[:, :2], xp)
            xp.multiply(g[:, 0], h[t], out=r_h[t])
            _lateral(r_h[t], U_T, lateral, xp)
            g[:, 2] += lateral
            xp.tanh(g[:, 2], out=g[:, 2])
            # h_{t+1} = z * h_bar + (1 - z) * h_t
            xp.subtract(g[:, 2], h[t], out=h[t + 1])
            h[t + 1] *= g[:, 1]
            h[t + 1] += h[t]
        self._x, self._W_x, self._U_rz, self._U = x, W_x, U_rz, U
        self._gates, self._states, self._r_h = pre, states, r_h
        return _seed_major(states[B:], T, S), _as_state(h[T], S).copy()

    def backward(self, indexes, grad_outputs):
        _refuse_double_backprop()
        ghs, gh_last = grad_outputs
        x, W_x, U_rz, U = self._x, self._W_x, self._U_rz, self._U
        gates, states, r_h = self._gates, self._states, self._r_h
        xp = backend.get_array_module(gates)
        T, B, _, H = gates.shape
        h_prev = states[:T * B].reshape(T, B, H)
        r, z, h_bar = (gates[:, :, k] for k in range(3))
        # What does not depend on the recurrence, for the whole window.
        dz = h_bar - h_prev
        dz *= z * (1 - z)
        dh_bar = 1 - h_bar * h_bar
        dh_bar *= z
        dr = r * (1 - r)
        dr *= h_prev
        one_minus_z = 1 - z
        gh = _output_grads(ghs, gh_last, (T, B, H), x.dtype, xp)
        g_gates = xp.empty((T, B, 3, H), x.dtype)
        g_r_h = xp.empty((B, H), x.dtype)
        lateral = xp.empty((B, H), x.dtype)
        carry = xp.empty((B, H), x.dtype)  # the gradient of h_{t-1}
        first = 0 if self.has_h0 else 1  # the first step with a lateral term
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                gh[t] += carry
            g = g_gates[t]
            xp.multiply(gh[t], dz[t], out=g[:, 1])
            xp.multiply(gh[t], dh_bar[t], out=g[:, 2])
            if t < first:
                g[:, 0] = 0
                continue
            _lateral(g[:, 2], U, g_r_h, xp)
            xp.multiply(g_r_h, dr[t], out=g[:, 0])
            xp.multiply(gh[t], one_minus_z[t], out=carry)
            g_r_h *= r[t]
            carry += g_r_h
            _lateral(g[:, :2].reshape(B, 2 * H), U_rz, lateral, xp)
            carry += lateral
        S = _seeds(W_x)
        g = _seed_major(g_gates.reshape(T * B, 3 * H), T, S)
        gx, gW_x = _project_grads(g, x, W_x, self.ids, 0 in indexes, xp)
        gW_r, gW_z, gW = xp.split(gW_x, 3, axis=-2)
        gb_r, gb_z, gb = xp.split(g.sum(axis=-2), 3, axis=-1)
        gU_r = gc_r = gU_z = gc_z = gU = gc = None
        if first < T:
            g_lateral = g[..., first * B // (S or 1):, :]
            gU_r, gU_z = xp.split(_weight_grad(
                g_lateral[..., :2 * H],
                _seed_major(states[first * B:T * B], T - first, S), xp),
                2, axis=-2)
            gU = _weight_grad(
                g_lateral[..., 2 * H:],
                _seed_major(r_h[first:].reshape(-1, H), T - first, S), xp)
            gc_r, gc_z, gc = xp.split(g_lateral.sum(axis=-2), 3, axis=-1)
        else:
            gW_r = gb_r = None  # r took no part
        gh0 = _as_state(carry, S) if self.has_h0 else None
        return _variables((gx, gW_r, gb_r, gW_z, gb_z, gW, gb,
                           gU_r, gc_r, gU_z, gc_z, gU, gc,
                           gh0)[:len(self.inputs)])


class WindowEmbedID(chainer.FunctionNode):
    """chainer.functions.embed_id, with a backward that does not loop.

    Inputs: ids (int, any shape), W (n_vocab, n_units); output W[ids].
    For a stack, W (S, n_vocab, n_units) and the output (S,) + W[ids]'s.
    """

    def forward(self, inputs):
        ids, W = inputs
        self._ids, self._w_shape = ids, W.shape
        return W.take(ids, axis=-2),

    def backward(self, indexes, grad_outputs):
        _refuse_double_backprop()
        gy = grad_outputs[0].array
        xp = backend.get_array_module(gy)
        ids = self._ids.ravel()
        n_vocab, n_units = self._w_shape[-2:]
        rows = self._w_shape[:-2] + (len(ids), n_units)  # (S,) in a stack
        gW = _scatter_rows(gy.reshape(rows), ids, n_vocab, xp)
        return None, chainer.Variable(gW, requires_grad=False)


def embed_id(ids, W):
    """W[ids] for int ids, as chainer.functions.embed_id, with a fast grad."""
    return WindowEmbedID().apply((ids, W))[0]


class WindowLinear(chainer.FunctionNode):
    """x W^T + b for x (N, in), W (out, in), b (out,): one node both ways.

    chainer.functions.linear's backward is three more nodes. For a stack,
    x (S, N, in), W (S, out, in), b (S, out).
    """

    def forward(self, inputs):
        x, W, b = inputs
        xp = backend.get_array_module(x)
        self._x, self._W = x, W
        y = _matmul(x, _transposed(W), xp)
        y += b[..., None, :]
        return y,

    def backward(self, indexes, grad_outputs):
        _refuse_double_backprop()
        gy = grad_outputs[0].array
        xp = backend.get_array_module(gy)
        gx = _matmul(gy, self._W, xp) if 0 in indexes else None
        return _variables((gx, _weight_grad(gy, self._x, xp),
                           gy.sum(axis=-2)))


def linear(x, W, b):
    """What chainer.functions.linear does to x (N, in), as one node."""
    return WindowLinear().apply((x, W, b))[0]


def _window_inputs(x, n_steps, ids, *states):
    """(x, ids) checked against n_steps and the batch size of the states.

    x is the layer's input (T * B, in); or, if ids is given, it is the table
    (see the module's docstring) and ids the rows for the window.
    """
    if ids is not None:
        ids = getattr(ids, 'array', ids).ravel()
    batch, rest = divmod(_n_rows(x, ids), n_steps)
    if rest:
        raise ValueError('{} rows are not {} steps of a batch'.format(
            _n_rows(x, ids), n_steps))
    for state in states:
        if state is not None and state.shape[-2] != batch:
            raise ValueError(
                'the state holds {} streams and the window {}: a fused '
                'window cannot change the batch size'.format(
                    state.shape[-2], batch))
    return x, ids


def elman_window(x, n_steps, W, b, U, c, h0=None, activation='tanh',
                 ids=None):
    """(hs (T * B, H), h_last (B, H)): an Elman layer over the window x.

    h_t = act(x_t W^T + b + h_{t-1} U^T + c), as ElmanWindow. x (T * B, in),
    or with ids a table (see the module's docstring). h_last, the state for
    the next window, keeps its graph, as the per-step path leaves it; the
    updater cuts it after every window.
    """
    x, ids = _window_inputs(x, n_steps, ids, h0)
    inputs = [x, W, b, U, c] + ([] if h0 is None else [h0])
    return ElmanWindow(n_steps, activation, h0 is not None, ids).apply(inputs)


def lstm_window(x, n_steps, W, b, U, c0=None, h0=None, ids=None):
    """(hs, h_last, c_last): chainer.links.LSTM over the window x.

    W, b are its upward link's, U its lateral link's W; x, ids and the
    states are as in elman_window.
    """
    x, ids = _window_inputs(x, n_steps, ids, c0, h0)
    inputs = [x, W, b, U] + [state for state in (c0, h0)
                             if state is not None]
    return LSTMWindow(n_steps, c0 is not None, h0 is not None,
                      ids).apply(inputs)


def gru_window(x, n_steps, weights, h0=None, ids=None):
    """(hs, h_last): chainer.links.StatefulGRU over the window x.

    weights: W and b of each of its links, in the order of GRU_LINKS; x,
    ids and the state are as in elman_window.
    """
    x, ids = _window_inputs(x, n_steps, ids, h0)
    inputs = [x] + list(weights) + ([] if h0 is None else [h0])
    return GRUWindow(n_steps, h0 is not None, ids).apply(inputs)
