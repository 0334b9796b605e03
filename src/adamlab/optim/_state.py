"""``opt.state`` as the packed engine sees it: a ``defaultdict(dict)`` that counts its changes.

The packed engine keeps each param's state in flat buffers and makes ``opt.state[p]`` views of them
(:mod:`adamlab.optim._packed`). Code outside the optimizer may change that state between steps, as
it may with torch.optim: ``opt.state.clear()``, ``del opt.state[p]``, ``opt.state[p] = {...}``,
``opt.state[p]["exp_avg"] = t``. Every such change increments :attr:`StateDict.version`, and a step
that finds another version than the last step left re-packs the params from ``opt.state`` as it is
(so a cleared state starts afresh, as on the reference engine). Reading never counts as a change,
except reading the state of a param that has none, which inserts an empty dict as ``defaultdict`` does.

Both classes pickle (and ``copy.deepcopy``) as the plain ``defaultdict``/``dict`` torch.optim uses,
and the optimizer's ``state_dict()`` holds plain dicts.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class _Counted:
    """The mutators of a dict, each reporting the change (:meth:`_changed`) before it is made."""

    def _changed(self) -> None:
        raise NotImplementedError

    def __delitem__(self, key: Any) -> None:
        self._changed()
        super().__delitem__(key)  # type: ignore[misc]

    def clear(self) -> None:
        self._changed()
        super().clear()  # type: ignore[misc]

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)  # type: ignore[misc]

    def popitem(self) -> Any:
        self._changed()
        return super().popitem()  # type: ignore[misc]

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:  # type: ignore[operator]
            self[key] = default  # type: ignore[index]
        return self[key]  # type: ignore[index]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value  # type: ignore[index]

    def __ior__(self, other: Any) -> Any:
        self.update(other)
        return self


class StateDict(_Counted, defaultdict):
    """``defaultdict(dict)`` whose changes, and its :class:`ParamState` values' changes, increment :attr:`version`."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(None)
        self.version = 0
        for key, value in dict(items).items():
            self[key] = value

    def _changed(self) -> None:
        self.version += 1

    def __missing__(self, key: Any) -> ParamState:
        value = self[key] = ParamState(self)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, dict) and not (isinstance(value, ParamState) and value.owner is self):
            value = ParamState(self, value)
        self.version += 1
        super().__setitem__(key, value)

    def __reduce__(self) -> Any:
        return (defaultdict, (dict,), None, None, ((k, dict(v) if isinstance(v, dict) else v) for k, v in self.items()))


class ParamState(_Counted, dict):
    """One param's state, a ``dict`` whose changes increment its :class:`StateDict`'s version.

    ``conformed`` is what the reference engine last checked it against (the param's dtype, device and
    shape; see :func:`~adamlab.optim._engine.conform_state`), None after a slot is replaced.
    """

    def __init__(self, owner: StateDict, items: Any = ()) -> None:
        super().__init__(items)
        self.owner = owner
        self.conformed: Any = None

    def _changed(self) -> None:
        self.owner.version += 1
        self.conformed = None

    def __setitem__(self, key: Any, value: Any) -> None:
        self.owner.version += 1
        if self.get(key) is not value:  # (``state["step"] += 1`` sets the same tensor again)
            self.conformed = None
        super().__setitem__(key, value)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))
