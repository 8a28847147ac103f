"""FlatAdam: chainer's Adam, computed over all parameters at once."""
import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
from chainer import backend

import chainer_internals


class FlatAdam(chainer.optimizers.Adam):
    """Adam whose update is a few array operations over every parameter.

    chainer.optimizers.Adam walks the parameters one by one, with checks and
    hooks for each, a large share of a fused update (docs/speed.md).
    FlatAdam keeps every parameter's m and v as views of two
    flat arrays and applies the same formulas, in the same order, to all of
    them at once: on the CPU its results are bit for bit Adam's. The state
    lives under the same names, so snapshots move between the two.

    Only plain Adam: no AMSGrad, AdaBound, weight decay or update-rule
    hooks (optimizer hooks, such as gradient clipping, run as usual).
    """

    def __init__(self, alpha=0.001):
        super().__init__(alpha=alpha)
        self._flat = None  # (m, v, [(param, start, end)]) once built
        self._work = None  # (grad, work): flat arrays, once allocated

    def update(self, lossfun=None, *args, **kwds):
        if lossfun is not None:
            self.target.cleargrads()
            lossfun(*args, **kwds).backward(
                loss_scale=chainer_internals.loss_scale(self))
        self.reallocate_cleared_grads()
        self.check_nan_in_grads()
        self.call_hooks('pre')
        self.t += 1
        if self.is_safe_to_update():
            self._update_all()
        self.reallocate_cleared_grads()
        self.call_hooks('post')
        self.update_loss_scale()

    def _update_all(self):
        m, v, views = self._flat_state()
        rule = views[0][0].update_rule
        hp = rule.hyperparam
        xp = backend.get_array_module(m)
        # Two work arrays the size of all parameters, kept between updates:
        # NumPy gives large freed arrays back to the system, and a new one
        # costs a page fault every 4 KiB, which here cost more than the
        # arithmetic (docs/speed.md). The operations are Adam's, in its
        # order, in place.
        if self._work is None or self._work[0].shape != m.shape or \
                self._work[0].dtype != m.dtype or \
                backend.get_array_module(self._work[0]) is not xp:
            self._work = xp.empty_like(m), xp.empty_like(m)
        grad, work = self._work
        xp.concatenate([param.grad.ravel() for param, _, _ in views],
                       out=grad)
        for param, _, _ in views:
            param.update_rule.t += 1
        # The formulas of chainer.optimizers.adam.AdamRule.update_core_cpu:
        # m += (1 - beta1) * (grad - m)
        xp.subtract(grad, m, out=work)
        work *= 1 - hp.beta1
        m += work
        # v += (1 - beta2) * (grad * grad - v)
        xp.multiply(grad, grad, out=work)
        work -= v
        work *= 1 - hp.beta2
        v += work
        # param -= eta * (alpha_t / (sqrt(v) + eps) * m)
        xp.sqrt(v, out=work)
        work += hp.eps
        if len({param.update_rule.t for param, _, _ in views}) == 1:
            xp.divide(rule.alpha_t, work, out=work)
        else:  # a parameter added or replaced later is at another step
            for param, start, end in views:
                xp.divide(param.update_rule.alpha_t, work[start:end],
                          out=work[start:end])
        work *= m
        work *= -hp.eta
        for param, start, end in views:
            param.array += work[start:end].reshape(param.shape)

    def _flat_state(self):
        """(m, v, views): Adam's state of every parameter, as flat arrays.

        Rebuilt when a parameter's state is not a view of them, as after
        the first update, deserialization or a move to another device.
        """
        # As Adam, leave a parameter without an update rule as it is.
        params = [param for param in self.target.params()
                  if param.update_rule is not None]
        if self._flat is not None:
            m, v, views = self._flat
            # By identity: Parameters compared with == raise TypeError.
            if [id(param) for param, _, _ in views] == list(
                    map(id, params)) and all(
                    param.update_rule.state['m'].base is m and
                    param.update_rule.state['v'].base is v
                    for param in params):
                return self._flat
        views, start = [], 0
        for param in params:
            rule = param.update_rule
            hp = rule.hyperparam
            if (hp.amsgrad or hp.adabound or hp.weight_decay_rate or
                    chainer_internals.has_update_hooks(rule)):
                raise ValueError('FlatAdam does plain Adam only')
            # Create the state, or move a deserialized one to the
            # parameter's device, as UpdateRule does before every update.
            chainer_internals.init_states(rule, param)
            views.append((param, start, start + param.size))
            start += param.size
        xp = backend.get_array_module(params[0].array)
        m, v = (xp.concatenate([param.update_rule.state[key].ravel()
                                for param in params]) for key in ('m', 'v'))
        for param, begin, end in views:
            state = param.update_rule.state
            state['m'] = m[begin:end].reshape(param.shape)
            state['v'] = v[begin:end].reshape(param.shape)
        self._flat = m, v, views
        return self._flat
