"""The model interface: public methods validate and orchestrate, subclasses implement ``_fit``/``_sample``."""

from __future__ import annotations

import dataclasses
import math
import numbers
import reprlib
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from synthgen.errors import ConfigError, NotFittedError
from synthgen.models.registry import Capabilities, check_capable
from synthgen.transform.layout import OutputLayout

#: a network type, for :func:`load_network`
M = TypeVar("M", bound=nn.Module)

if TYPE_CHECKING:
    from synthgen.distributed import World
    from synthgen.dp.training import DPSGD, PrivateTraining, Schedule


@dataclasses.dataclass
class FitOptions:
    """How to run a fit (not what to learn): seed, device and progress display."""

    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    dp: DPSGD | None = None  # train with DP-SGD (models with ``capabilities.dp``)
    #: called with the model's training state (tensors, meta) every ``checkpoint_every`` epochs and
    #: when an interrupt is requested; resuming from that state reproduces the uninterrupted run
    checkpoint: Callable[[dict[str, torch.Tensor], dict[str, Any]], object] | None = None
    checkpoint_every: int = 0
    resume: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None
    #: training across processes (``synthgen.distributed``): this process's rank and the world size;
    #: ``data`` is then this rank's partition of ``total_rows`` rows
    world: World | None = None
    total_rows: int | None = None


class BatchSource(ABC):
    """Encoded training rows that are read piece by piece (from disk) instead of held as one matrix.

    Models with ``capabilities.streaming`` train from one by pulling minibatches, epoch after epoch
    (``synthgen.stream.ParquetBatches`` streams a Parquet file).

    Attributes:
        rows: rows in one epoch.
        width: columns of every batch (the layout's ``dim``).
    """

    rows: int
    width: int

    @abstractmethod
    def batches(self, epoch: int, batch_size: int) -> Iterator[np.ndarray]:
        """Epoch ``epoch``'s rows, each exactly once, shuffled, as float32 arrays of ``batch_size`` rows
        (the last may be smaller), so an epoch is ``ceil(rows / batch_size)`` batches. Deterministic:
        the same epoch gives the same batches."""


#: rows generated per model call when sampling
SAMPLE_PIECE = 2048


class Model(ABC):
    """A generative model over the transformer's encoded matrix.

    Subclasses set ``name`` and ``Config`` (a dataclass of hyperparameters) and implement
    ``_fit``, ``_sample`` and the state hooks. Constructors only store hyperparameters.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    #: what the model can do (DP, streaming, processes, conditions, ...): declared once, checked by
    #: ``synthgen.models.registry.check_capable``
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: hyperparameters DP training needs (a user value that differs is refused)
    dp_hyperparameters: ClassVar[dict[str, Any]] = {}
    #: defaults under DP, where the user gave none (DP-SGD wants small networks, big batches, few epochs)
    dp_defaults: ClassVar[dict[str, Any]] = {}
    #: under DP, whether the model needs noisy frequencies of the category and null slots
    dp_needs_frequencies: ClassVar[bool] = False
    #: DP state of the last fit (None without DP): its accountant counted every noisy release. Models with
    #: ``capabilities.dp`` set it in ``_fit``
    private: PrivateTraining | None = None

    def __init__(self, **hyperparameters: Any):
        self.config = make_config(self.Config, hyperparameters, self.name)
        self.layout: OutputLayout | None = None
        self.history: list[dict[str, float]] = []

    def fit(self, data: np.ndarray | BatchSource, layout: OutputLayout, options: FitOptions | None = None, *,
            context: np.ndarray | None = None) -> Model:
        """Learn from the encoded matrix ``data`` (rows x ``layout.dim``), or from a ``BatchSource`` of such rows.

        ``context``: one row of conditioning values per data row (e.g. its parent's encoded row in a
        relational fit; models with ``capabilities.context``). ``sample`` then takes one context row per
        generated row.

        Raises:
            ConfigError: for data of another width, or a fit the model's ``capabilities`` exclude.
        """
        options = options or FitOptions()
        streamed = isinstance(data, BatchSource)
        check_capable(type(self), dp=options.dp is not None, streaming=streamed,
                      processes=options.world is not None and options.world.size > 1, context=context is not None)
        shape = (data.rows, data.width) if isinstance(data, BatchSource) else data.shape
        if len(shape) != 2 or shape[1] != layout.dim:
            raise ConfigError(f"{'the stream' if streamed else 'data'} has shape {shape}, the layout expects width "
                              f"{layout.dim}")
        if context is not None:
            if streamed or context.ndim != 2 or len(context) != shape[0]:
                raise ConfigError(f"context has shape {context.shape}; it needs one row per data row ({shape[0]}) "
                                  "and a fit in memory")
            self.config.context_dim = int(context.shape[1])
            data = np.concatenate([np.asarray(data, np.float32), np.asarray(context, np.float32)], axis=1)
        elif getattr(self.config, "context_dim", 0):
            self.config.context_dim = 0
        self.layout = layout
        self.history = []
        self._fit(data if streamed else np.ascontiguousarray(data, dtype=np.float32), options)
        return self

    def steers(self, span: int) -> bool:
        """Whether ``sample(cond_index=...)`` generates for a category of cond span ``span`` directly (else
        the Sampler keeps the generated rows that meet a condition)."""
        return self.capabilities.conditions

    @property
    def context_dim(self) -> int:
        """Width of the context rows the model was fitted with (0: none)."""
        return int(getattr(self.config, "context_dim", 0))

    @property
    def fitted_layout(self) -> OutputLayout:
        """The layout the model was fitted on (``fit`` sets it before ``_fit`` runs, ``restore`` before loading)."""
        if self.layout is None:
            raise NotFittedError(f"the {self.name} model is not fitted (fix: call fit first)")
        return self.layout

    def sample(self, n: int, *, seed: int, cond_index: int | None = None, out: np.ndarray | None = None,
               context: np.ndarray | None = None) -> np.ndarray:
        """Generate ``n`` encoded rows (``out.T``); ``cond_index`` asks for one category (a cond-vector position).

        ``context``: ``(n, context_dim)`` conditioning rows, one per generated row, for a model fitted with
        a context (and required by it).

        ``out``: a float32 ``(width, n)`` array (or view) to write the rows into, column-major. Where
        ``capabilities.draws_categories`` is set, the one-hot blocks hold logits: decode them with
        ``inverse_transform(..., uniforms=)`` (as the Sampler does), or their argmax is the mode.
        """
        if self.layout is None:
            raise NotFittedError(f"the {self.name} model is not fitted (fix: call fit first)")
        if (context is None) != (self.context_dim == 0) or (
                context is not None and context.shape != (n, self.context_dim)):
            got = "none" if context is None else f"shape {context.shape}"
            raise ConfigError(f"the {self.name} model was fitted with a context of width {self.context_dim}; "
                              f"sample got {got} for {n} rows")
        rng = np.random.default_rng(seed)
        # column-major output filled in cache-sized pieces: decoding slices columns, and small
        # pieces keep the generator's temporaries in cache (about 1.5x faster than one big batch)
        if out is None:
            out = np.empty((self.layout.dim, n), dtype=np.float32)
        elif out.shape != (self.layout.dim, n) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 of shape {(self.layout.dim, n)}, got {out.dtype} {out.shape}")
        with torch.no_grad():
            for start in range(0, n, SAMPLE_PIECE):
                stop = min(start + SAMPLE_PIECE, n)
                piece = None if context is None else np.ascontiguousarray(context[start:stop], dtype=np.float32)
                out[:, start:stop] = self._sample(stop - start, rng, cond_index, piece).T
        return out.T

    @abstractmethod
    def _fit(self, data: np.ndarray | BatchSource, options: FitOptions) -> None: ...

    @abstractmethod
    def _sample(self, n: int, rng: np.random.Generator, cond_index: int | None,
                context: np.ndarray | None = None) -> np.ndarray:
        """``n`` encoded rows (n is at most SAMPLE_PIECE), given ``n`` context rows for a model fitted with a
        context; all randomness seeded from ``rng``."""

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors needed to sample (saved as safetensors); never training rows."""

    @abstractmethod
    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Rebuild the sampling state from ``state_tensors()`` output (layout already set)."""

    def dp_schedule(self, n_rows: int, n_columns: int) -> Schedule:
        """How this model's fit reads the rows under DP (models with ``capabilities.dp`` override it)."""
        check_capable(type(self), dp=True)
        raise NotImplementedError(f"{type(self).__name__} declares DP training but no dp_schedule")

    def hyperparameters(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @classmethod
    def restore(cls, hyperparameters: dict[str, Any], layout: OutputLayout,
                tensors: dict[str, torch.Tensor]) -> Model:
        """Rebuild a fitted model from its saved parts."""
        model = cls(**hyperparameters)
        model.layout = layout
        model.load_state_tensors(tensors)
        return model


def make_config(config_cls: type, values: dict[str, Any], model: str) -> Any:
    """Build a hyperparameter dataclass, naming unknown keys and the valid ones.

    Values must have their field's type (whole numbers for ``int``, finite numbers for ``float``,
    ``True``/``False`` for ``bool``, a list of whole numbers for ``tuple[int, ...]``), then the
    dataclass's own ``check()`` runs: a model file's hyperparameters pass here before anything is built.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{model} has no hyperparameter {', '.join(unknown)} "
                          f"(fix: use one of: {', '.join(fields)})")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}
    _check_types(config_cls, clean, model)
    config = config_cls(**clean)
    check = getattr(config, "check", None)
    if check is not None:
        check()
    return config


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) and math.isfinite(value)


#: the field types ``make_config`` checks, and how its messages name them
_TYPES: dict[Any, tuple[Callable[[Any], bool], str]] = {
    int: (_is_int, "a whole number"),
    float: (_is_real, "a finite number"),
    bool: (lambda v: isinstance(v, bool | np.bool_), "true or false"),
    tuple[int, ...]: (lambda v: isinstance(v, tuple) and all(map(_is_int, v)), "a list of whole numbers"),
}


def _check_types(config_cls: type, values: dict[str, Any], model: str) -> None:
    try:
        hints = typing.get_type_hints(config_cls)
    except (NameError, TypeError):  # a plugin's config with hints we cannot resolve: its check() decides
        return
    for name, value in values.items():
        test, what = _TYPES.get(hints.get(name), (None, ""))
        if test is not None and not test(value):
            raise ConfigError(f"{model} hyperparameter {name} must be {what}, got {reprlib.repr(value)}")


#: the largest networks hyperparameters may ask for: widths (and other sizes) and layers
MAX_WIDTH, MAX_LAYERS = 1 << 16, 64


def check_sizes(**sizes: int | tuple[int, ...]) -> None:
    """Refuse a size, or a tuple of layer widths, outside 1 .. MAX_WIDTH, or more than MAX_LAYERS layers."""
    for name, value in sizes.items():
        widths = value if isinstance(value, tuple) else (value,)
        if len(widths) > MAX_LAYERS or not all(1 <= w <= MAX_WIDTH for w in widths):
            raise ConfigError(f"{name}={reprlib.repr(value)} is out of range: each size from 1 to {MAX_WIDTH:,}, "
                              f"at most {MAX_LAYERS} layers (fix: smaller networks)")


def check_shapes(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int | None, ...]]) -> None:
    """Refuse ``tensors`` unless they have exactly the keys and shapes of ``expected`` (None: any size).

    Raises:
        ValueError: naming the first key missing, extra or of another shape.
    """
    for key in sorted(set(expected) | set(tensors)):
        want = expected.get(key)
        got = tuple(tensors[key].shape) if key in tensors else None
        if want is None or got is None or len(got) != len(want) or any(
                w is not None and w != g for w, g in zip(want, got, strict=True)):
            raise ValueError(f"the weights do not fit the model the manifest describes: {key} is "
                             f"{'absent' if got is None else got} in the file, "
                             f"{'unexpected' if want is None else want} by the manifest")


def load_network(build: Callable[[], M], tensors: dict[str, torch.Tensor], prefix: str) -> M:
    """The network ``build()`` makes, filled with the ``prefix``-ed tensors, in eval mode.

    It is first built on the meta device (no memory, no initialization) and its tensors' shapes are
    compared with the file's (:func:`check_shapes`), so hyperparameters that disagree with the weights
    cost nothing; only then is memory allocated, no more than the file's tensors take.
    """
    with torch.device("meta"):
        net = build()
    mine = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    check_shapes(mine, {prefix + k: tuple(v.shape) for k, v in net.state_dict().items()})
    net = net.to_empty(device="cpu")
    net.load_state_dict({k.removeprefix(prefix): v for k, v in mine.items()})
    return net.eval()
