"""Wiring graphs for liquid networks: who talks to whom, and with which sign.

Framework-free (numpy only). The constructors and their arguments follow the ``ncps`` package
(``ncps.wirings``) so that code written for ncps ports by changing the import, and for the same seed
the random graphs are identical to ncps 1.0.1 (we draw from the same random streams in the same
order; see ``tests/test_wirings.py`` for the check against ncps).

Conventions (also in docs/math.md):

* ``adjacency_matrix[i, j]`` is the polarity (+1 excitatory, -1 inhibitory, 0 none) of the synapse
  from neuron ``i`` to neuron ``j``; ``sensory_adjacency_matrix[k, j]`` the same from input ``k``.
* Neurons ``0 .. output_dim-1`` are the motor (output) neurons.
* A wiring is *built* once its input dimension is known (``build(input_dim)``); sensory synapses
  exist only after that. A layer builds the wiring it is given in place, as ncps does (so the user's
  object reports its synapses afterwards), and takes a copy built for its own input size only when
  the object is already built for another one (``Wiring.built_for``): one object serves many layers
  (ncps#75).
* Layers: ``num_layers`` / ``get_neurons_of_layer`` list the neurons layer by layer, from the layer
  that reads the inputs to the motor layer. Every neuron is in exactly one layer and the motor
  neurons (``0 .. output_dim-1``) are in the last one, listed first in id order;
  ``check_layers()`` says what is wrong otherwise. The wired CfC runs one sub-cell per layer, in this order.

Why one file (about 500 lines): it is the public module ``liquidflow.wirings``, the counterpart of
``ncps.wirings`` one class for one class, and the random graphs must draw from the random streams in
ncps' order; keeping the constructors side by side in one file, as ncps has them, keeps that order
checkable against the original at a glance.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "NCP",
    "AutoNCP",
    "FullyConnected",
    "Random",
    "Wiring",
    "wiring_from_config",
]

_POLARITIES = (-1, 1)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _same_graph(a: Wiring, b: Wiring) -> bool:
    return (
        a.units == b.units
        and a.output_dim == b.output_dim
        and a.input_dim == b.input_dim
        and np.array_equal(a.adjacency_matrix, b.adjacency_matrix)
        and np.array_equal(np.asarray(a.sensory_adjacency_matrix), np.asarray(b.sensory_adjacency_matrix))
    )


class Wiring:
    """A general wiring of ``units`` neurons; add synapses by hand or use a subclass.

    ``output_dim`` defaults to ``units`` (every neuron is an output) for a plain ``Wiring``.
    """

    _registry: ClassVar[dict[str, type[Wiring]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Wiring._registry[cls.__name__] = cls

    def __init__(self, units: int) -> None:
        self.units = _check_int("units", units, 1)
        self.adjacency_matrix = np.zeros((self.units, self.units), dtype=np.int32)
        self.sensory_adjacency_matrix: np.ndarray | None = None
        self.input_dim: int | None = None
        self.output_dim: int | None = None
        # the wiring as it was just before build(): what a copy for another input size starts from
        self._unbuilt: Wiring | None = None

    # ------------------------------------------------------------------ structure
    @property
    def num_layers(self) -> int:
        return 1

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        if layer_id != 0:
            raise ValueError(f"layer_id must be 0 for a {type(self).__name__}; got {layer_id}")
        return list(range(self.units))

    def get_type_of_neuron(self, neuron_id: int) -> str:
        """'motor' for output neurons, else 'inter'."""
        out = self.output_dim if self.output_dim is not None else self.units
        return "motor" if neuron_id < out else "inter"

    @property
    def neuron_types(self) -> list[str]:
        return [self.get_type_of_neuron(i) for i in range(self.units)]

    def is_built(self) -> bool:
        return self.input_dim is not None

    def build(self, input_dim: int) -> None:
        """Fix the number of inputs (sensory neurons) and draw the sensory synapses."""
        input_dim = _check_int("input_dim", input_dim, 1)
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(
                f"this {type(self).__name__} wiring was built for input_dim={self.input_dim}; "
                f"got input_dim={input_dim}. Build a new wiring (or a copy) for another input size"
            )
        if self.input_dim is None:
            self._unbuilt = None
            self._unbuilt = copy.deepcopy(self)
            self.set_input_dim(input_dim)
            self._build_sensory()

    def built_for(self, input_dim: int | None) -> Wiring:
        """This wiring, built for ``input_dim`` inputs, with its layers checked (what a layer calls).

        An unbuilt wiring is built in place and returned (ncps builds the user's object, and code
        reads ``wiring.synapse_count`` after making the layer); one already built for ``input_dim``
        is returned as it is; one built for another input size is left alone and a copy of it as
        it was before ``build``, built for ``input_dim``, is returned, so that one object can serve
        layers of different input sizes (ncps#75). ``input_dim=None``: the wiring must be built.
        """
        if input_dim is None:
            if not self.is_built():
                raise ValueError(
                    f"the wiring is not built ({type(self).__name__}, and no input size was given): "
                    "pass the input size to the layer or call wiring.build(input_dim)"
                )
            wiring = self
        else:
            input_dim = _check_int("input_dim", input_dim, 1)
            if self.input_dim == input_dim:
                wiring = self  # not built again: an ncps-style build() override may draw on each call
            else:
                wiring = self if not self.is_built() else self._copy_unbuilt()
                wiring.build(input_dim)
        wiring.check_layers()
        return wiring

    def _copy_unbuilt(self) -> Wiring:
        """A copy of this built wiring as it was before ``build`` (to build for another size), when
        building that state again draws exactly this graph (no synapse was set by hand after it)."""
        snapshot = getattr(self, "_unbuilt", None)
        if snapshot is not None:
            trial = copy.deepcopy(snapshot)
            assert self.input_dim is not None
            trial.build(self.input_dim)
            if not _same_graph(trial, self):
                snapshot = None
        if snapshot is None:
            raise ValueError(
                f"this {type(self).__name__} wiring is built for input_dim={self.input_dim} and its graph is "
                "not one its arguments draw (synapses set by hand, or a graph restored or converted that "
                "cannot be redrawn), so it cannot be copied for another input size: make a new wiring "
                "for that layer"
            )
        return copy.deepcopy(snapshot)

    def check_layers(self) -> None:
        """Raise ValueError, naming the problem, when the layers or matrices are inconsistent.

        Checked: the adjacency shapes (units x units, input_dim x units), polarities in {-1, 0, 1},
        ``output_dim`` in [1, units], ``num_layers >= 1``, every layer a non-empty list of neuron
        ids in [0, units) without repeats, every neuron in exactly one layer, and the motor neurons
        (``0 .. output_dim-1``) in the last layer, listed first and in id order (the last layer's
        state is a wired CfC's output).
        """
        name = type(self).__name__
        n = self.units
        adj = np.asarray(self.adjacency_matrix)
        if adj.shape != (n, n):
            raise ValueError(f"{name}: adjacency_matrix must have shape ({n}, {n}) for units={n}; got {adj.shape}")
        if self.sensory_adjacency_matrix is not None:
            sadj = np.asarray(self.sensory_adjacency_matrix)
            if sadj.shape != (self.input_dim, n):
                raise ValueError(
                    f"{name}: sensory_adjacency_matrix must have shape ({self.input_dim}, {n}) for "
                    f"input_dim={self.input_dim}, units={n}; got {sadj.shape}"
                )
        else:
            sadj = np.zeros((0, n), dtype=np.int32)
        for label, matrix in (("adjacency_matrix", adj), ("sensory_adjacency_matrix", sadj)):
            bad = np.setdiff1d(np.unique(matrix), [-1, 0, 1])
            if bad.size:
                raise ValueError(f"{name}: {label} entries must be -1, 0 or +1 (polarities); got {bad.tolist()}")
        motors = self.output_dim if self.output_dim is not None else n
        if not 1 <= motors <= n:
            raise ValueError(f"{name}: output_dim must be in [1, {n}]; got {motors}")
        num_layers = self.num_layers
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be an integer >= 1; got {num_layers!r}")
        owner: dict[int, int] = {}
        layers = []
        for layer_id in range(int(num_layers)):
            neurons = [int(i) for i in self.get_neurons_of_layer(layer_id)]
            if not neurons:
                raise ValueError(f"{name}: layer {layer_id} of {num_layers} has no neurons")
            for i in neurons:
                if not 0 <= i < n:
                    raise ValueError(f"{name}: layer {layer_id} lists neuron {i}, outside [0, {n}) for units={n}")
                if i in owner:
                    where = "twice in that layer" if owner[i] == layer_id else f"also in layer {owner[i]}"
                    raise ValueError(f"{name}: neuron {i} is in layer {layer_id} and {where}; each neuron "
                                     "must be in exactly one layer")  # fmt: skip
                owner[i] = layer_id
            layers.append(neurons)
        missing = sorted(set(range(n)) - set(owner))
        if missing:
            raise ValueError(f"{name}: neurons {missing} are in no layer; each neuron must be in exactly one layer")
        outside = sorted(i for i in range(motors) if owner[i] != len(layers) - 1)
        if outside:
            raise ValueError(
                f"{name}: motor neurons (0 .. {motors - 1}, output_dim={motors}) must all be in the last "
                f"layer ({len(layers) - 1}); neurons {outside} are in layers "
                f"{sorted({owner[i] for i in outside})}: the motor layer must be last"
            )
        if layers[-1][:motors] != list(range(motors)):
            raise ValueError(
                f"{name}: the last layer must list the motor neurons first, in id order 0 .. {motors - 1} "
                f"(a wired CfC outputs the last layer's state in its listed order, an LTC neurons "
                f"0 .. {motors - 1}); got {layers[-1]}"
            )

    def _build_sensory(self) -> None:
        """Subclasses draw their sensory synapses here (called once, by build)."""

    def set_input_dim(self, input_dim: int) -> None:
        self.input_dim = _check_int("input_dim", input_dim, 1)
        self.sensory_adjacency_matrix = np.zeros((self.input_dim, self.units), dtype=np.int32)

    def set_output_dim(self, output_dim: int) -> None:
        output_dim = _check_int("output_dim", output_dim, 1)
        if output_dim > self.units:
            raise ValueError(f"output_dim must be <= units={self.units}; got {output_dim}")
        self.output_dim = output_dim

    # ------------------------------------------------------------------ synapses
    def add_synapse(self, src: int, dest: int, polarity: int) -> None:
        if not 0 <= src < self.units:
            raise ValueError(f"src must be in [0, {self.units}); got {src}")
        if not 0 <= dest < self.units:
            raise ValueError(f"dest must be in [0, {self.units}); got {dest}")
        if polarity not in _POLARITIES:
            raise ValueError(f"polarity must be -1 or +1; got {polarity}")
        self.adjacency_matrix[src, dest] = polarity

    def add_sensory_synapse(self, src: int, dest: int, polarity: int) -> None:
        if self.sensory_adjacency_matrix is None or self.input_dim is None:
            raise ValueError("cannot add sensory synapses before build(input_dim) was called")
        if not 0 <= src < self.input_dim:
            raise ValueError(f"src must be in [0, {self.input_dim}); got {src}")
        if not 0 <= dest < self.units:
            raise ValueError(f"dest must be in [0, {self.units}); got {dest}")
        if polarity not in _POLARITIES:
            raise ValueError(f"polarity must be -1 or +1; got {polarity}")
        self.sensory_adjacency_matrix[src, dest] = polarity

    def erev_initializer(self, shape: Any = None, dtype: Any = None) -> np.ndarray:
        return np.copy(self.adjacency_matrix)

    def sensory_erev_initializer(self, shape: Any = None, dtype: Any = None) -> np.ndarray:
        if self.sensory_adjacency_matrix is None:
            raise ValueError("the wiring is not built: call build(input_dim) first")
        return np.copy(self.sensory_adjacency_matrix)

    @property
    def synapse_count(self) -> int:
        return int(np.sum(np.abs(self.adjacency_matrix)))

    @property
    def sensory_synapse_count(self) -> int:
        if self.sensory_adjacency_matrix is None:
            return 0
        return int(np.sum(np.abs(self.sensory_adjacency_matrix)))

    # ------------------------------------------------------------------ config
    def _init_args(self) -> dict[str, Any]:
        return {"units": self.units}

    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable description; ``Wiring.from_config`` rebuilds an equal wiring."""
        config: dict[str, Any] = {"class_name": type(self).__name__, **self._init_args()}
        config["output_dim"] = self.output_dim
        config["input_dim"] = self.input_dim
        config["adjacency_matrix"] = self.adjacency_matrix.tolist()
        config["sensory_adjacency_matrix"] = (
            None if self.sensory_adjacency_matrix is None else self.sensory_adjacency_matrix.tolist()
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Wiring:
        """Rebuild a wiring from ``get_config()`` (the class is taken from ``class_name``)."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict; got {type(config).__name__}")
        config = dict(config)
        name = config.pop("class_name", cls.__name__)
        klass = Wiring._registry.get(name, Wiring) if name != "Wiring" else Wiring
        if name not in Wiring._registry and name != "Wiring":
            raise ValueError(f"unknown wiring class {name!r}; known: {sorted(Wiring._registry)}")
        adjacency = config.pop("adjacency_matrix", None)
        sensory = config.pop("sensory_adjacency_matrix", None)
        input_dim = config.pop("input_dim", None)
        output_dim = config.pop("output_dim", None)
        wiring = klass._from_init_args(config)
        if output_dim is not None:
            wiring.output_dim = int(output_dim)
        if adjacency is not None:
            wiring.adjacency_matrix = np.asarray(adjacency, dtype=np.int32).reshape(wiring.units, wiring.units)
        if input_dim is not None:
            wiring.input_dim = int(input_dim)
            if sensory is not None:
                wiring.sensory_adjacency_matrix = np.asarray(sensory, dtype=np.int32).reshape(
                    wiring.input_dim, wiring.units
                )
            else:
                wiring.sensory_adjacency_matrix = np.zeros((wiring.input_dim, wiring.units), np.int32)
            wiring._restore_after_build()
            wiring._unbuilt = klass._redrawable(config, wiring)
        return wiring

    @classmethod
    def _redrawable(cls, args: dict[str, Any], built: Wiring) -> Wiring | None:
        """The unbuilt wiring the constructor arguments give, when building it again draws exactly
        ``built``'s graph (every seeded wiring does); None for a graph set by hand (its sensory
        synapses cannot be drawn for another input size)."""
        assert built.input_dim is not None
        try:
            fresh = cls._from_init_args(args)
            trial = copy.deepcopy(fresh)
            trial.build(built.input_dim)
        except (TypeError, ValueError):
            return None
        return fresh if _same_graph(trial, built) else None

    @classmethod
    def _from_init_args(cls, args: dict[str, Any]) -> Wiring:
        try:
            return cls(**args)
        except TypeError as e:
            raise ValueError(f"bad config for {cls.__name__}: {args}: {e}") from e

    def _restore_after_build(self) -> None:
        """Restore bookkeeping that ``build`` sets up, without drawing synapses again."""

    def to_json(self) -> str:
        return json.dumps(self.get_config())

    @classmethod
    def from_json(cls, text: str) -> Wiring:
        return cls.from_config(json.loads(text))

    def copy(self) -> Wiring:
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Wiring):
            return NotImplemented
        return self.get_config() == other.get_config()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        built = f"input_dim={self.input_dim}" if self.is_built() else "not built"
        return (
            f"{type(self).__name__}(units={self.units}, output_dim={self.output_dim}, {built}, "
            f"synapses={self.synapse_count}, sensory_synapses={self.sensory_synapse_count})"
        )

    # ------------------------------------------------------------------ graph
    def get_graph(self, include_sensory_neurons: bool = True) -> Any:
        """A ``networkx.DiGraph`` of the wiring (needs networkx: ``pip install liquidflow[plot]``)."""
        if not self.is_built():
            raise ValueError("the wiring is not built: call build(input_dim) first")
        try:
            import networkx as nx
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("get_graph needs networkx: pip install 'liquidflow[plot]'") from e
        graph = nx.DiGraph()
        for i in range(self.units):
            graph.add_node(f"neuron_{i}", neuron_type=self.get_type_of_neuron(i))
        if include_sensory_neurons:
            assert self.input_dim is not None and self.sensory_adjacency_matrix is not None
            for k in range(self.input_dim):
                graph.add_node(f"sensory_{k}", neuron_type="sensory")
            for k, j in zip(*np.nonzero(self.sensory_adjacency_matrix)):
                pol = int(self.sensory_adjacency_matrix[k, j])
                graph.add_edge(f"sensory_{k}", f"neuron_{j}", polarity=pol)
        for i, j in zip(*np.nonzero(self.adjacency_matrix)):
            graph.add_edge(f"neuron_{i}", f"neuron_{j}", polarity=int(self.adjacency_matrix[i, j]))
        return graph

    def draw_graph(
        self,
        layout: str = "shell",
        neuron_colors: dict[str, str] | None = None,
        synapse_colors: dict[str, str] | None = None,
        draw_labels: bool = False,
    ) -> list[Any]:
        """Draw the built wiring on the current matplotlib axes (ncps's ``draw_graph``).

        Nodes are coloured by type (``neuron_colors``: ``{"sensory"|"inter"|"command"|"motor": color}``
        overrides the defaults), synapses by polarity (``synapse_colors``: ``{"excitatory": color,
        "inhibitory": color}``); ``layout`` names a networkx layout. Returns one legend handle per
        neuron type drawn (``plt.legend(handles=...)``). For a trained model's synapse strengths use
        ``liquidflow.interpret.plot_wiring``. Needs ``pip install 'liquidflow[plot]'``.
        """
        layouts = ("shell", "circular", "kamada", "random", "spring", "spectral", "spiral")
        if layout not in layouts:
            raise ValueError(f"unknown layout {layout!r}; valid names: {list(layouts)}")
        graph = self.get_graph(include_sensory_neurons=True)
        try:
            import matplotlib.patches as mpatches
            import networkx as nx
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("draw_graph needs matplotlib and networkx: pip install 'liquidflow[plot]'") from e
        place = {
            "shell": nx.shell_layout,
            "circular": nx.circular_layout,
            "kamada": nx.kamada_kawai_layout,
            "random": nx.random_layout,
            "spring": nx.spring_layout,
            "spectral": nx.spectral_layout,
            "spiral": nx.spiral_layout,
        }[layout]
        pos = place(graph)
        colors = {"sensory": "tab:olive", "inter": "tab:blue", "command": "tab:orange", "motor": "tab:green"}
        colors.update(neuron_colors or {})
        edge_colors = {"excitatory": "tab:green", "inhibitory": "tab:red"}
        edge_colors.update(synapse_colors or {})
        unknown = sorted({t for _, t in graph.nodes(data="neuron_type")} - set(colors))
        if unknown:
            raise ValueError(f"neuron_colors has no color for neuron types {unknown}")
        handles = []
        for kind, color in colors.items():
            nodes = [n for n, t in graph.nodes(data="neuron_type") if t == kind]
            if nodes:
                nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=color)
                handles.append(mpatches.Patch(color=color, label=f"{kind} neurons"))
        for polarity, name in ((1, "excitatory"), (-1, "inhibitory")):
            edges = [(a, b) for a, b, p in graph.edges(data="polarity") if p == polarity]
            nx.draw_networkx_edges(graph, pos, edgelist=edges, edge_color=edge_colors[name], arrows=True)
        if draw_labels:
            nx.draw_networkx_labels(graph, pos)
        return handles


class FullyConnected(Wiring):
    """Every neuron connects to every neuron (and every input to every neuron).

    Polarities are drawn with P(+1) = 2/3, as in ncps.
    """

    def __init__(
        self,
        units: int,
        output_dim: int | None = None,
        erev_init_seed: int = 1111,
        self_connections: bool = True,
    ) -> None:
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        self.self_connections = bool(self_connections)
        self.erev_init_seed = int(erev_init_seed)
        self._rng = np.random.default_rng(self.erev_init_seed)
        for src in range(self.units):
            for dest in range(self.units):
                if src == dest and not self.self_connections:
                    continue
                self.add_synapse(src, dest, int(self._rng.choice([-1, 1, 1])))

    def _init_args(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "erev_init_seed": self.erev_init_seed,
            "self_connections": self.self_connections,
        }

    def _build_sensory(self) -> None:
        assert self.input_dim is not None
        for src in range(self.input_dim):
            for dest in range(self.units):
                self.add_sensory_synapse(src, dest, int(self._rng.choice([-1, 1, 1])))


class Random(Wiring):
    """A random sparse wiring: a fraction ``1 - sparsity_level`` of all possible synapses exists."""

    def __init__(
        self,
        units: int,
        output_dim: int | None = None,
        sparsity_level: float = 0.0,
        random_seed: int = 1111,
    ) -> None:
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        if not 0.0 <= float(sparsity_level) < 1.0:
            raise ValueError(f"sparsity_level must be in [0, 1); got {sparsity_level}")
        self.sparsity_level = float(sparsity_level)
        self.random_seed = int(random_seed)
        self._rng = np.random.default_rng(self.random_seed)
        n = int(np.round(self.units * self.units * (1 - self.sparsity_level)))
        pairs = [(s, d) for s in range(self.units) for d in range(self.units)]
        for src, dest in self._rng.choice(pairs, size=n, replace=False):
            self.add_synapse(int(src), int(dest), int(self._rng.choice([-1, 1, 1])))

    def _init_args(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "sparsity_level": self.sparsity_level,
            "random_seed": self.random_seed,
        }

    def _build_sensory(self) -> None:
        assert self.input_dim is not None
        n = int(np.round(self.input_dim * self.units * (1 - self.sparsity_level)))
        pairs = [(s, d) for s in range(self.input_dim) for d in range(self.units)]
        for src, dest in self._rng.choice(pairs, size=n, replace=False):
            # ncps 1.0.1 draws the polarity twice here and keeps the second; we draw the same
            # numbers so that a seed gives the same graph in both packages.
            self._rng.choice([-1, 1, 1])
            self.add_sensory_synapse(int(src), int(dest), int(self._rng.choice([-1, 1, 1])))


class NCP(Wiring):
    """A Neural Circuit Policy: sensory -> inter -> command (recurrent) -> motor neurons.

    ``inter_neurons`` is an int (one inter layer, as in ncps) or a list of layer sizes (several
    inter layers, sensory -> inter[0] -> inter[1] -> ... -> command; ncps#71). Neuron ids: motor
    ``[0, motor)``, command ``[motor, motor+command)``, then the inter layers in order. Layers (see
    ``get_neurons_of_layer``): the inter layers, then command, then motor.

    ``sensory_fanout``: synapses out of each input onto the first inter layer; ``inter_fanout``: out
    of each inter neuron onto the next layer (inter or command); ``recurrent_command_synapses``:
    number of command->command draws; ``motor_fanin``: synapses into each motor neuron from command
    neurons. Neurons left unreached by the random draws get a mean fan-in so that every neuron is
    connected. With an int (or a one-element list) the graph for a seed is the one ncps draws.
    """

    def __init__(
        self,
        inter_neurons: int | list[int],
        command_neurons: int,
        motor_neurons: int,
        sensory_fanout: int,
        inter_fanout: int,
        recurrent_command_synapses: int,
        motor_fanin: int,
        seed: int = 22222,
    ) -> None:
        if isinstance(inter_neurons, (list, tuple)):
            if not inter_neurons:
                raise ValueError("inter_neurons must be an int or a non-empty list of layer sizes; got []")
            sizes = [_check_int(f"inter_neurons[{k}]", n, 1) for k, n in enumerate(inter_neurons)]
            self._inter_as_list = True
        else:
            sizes = [_check_int("inter_neurons", inter_neurons, 1)]
            self._inter_as_list = False
        command_neurons = _check_int("command_neurons", command_neurons, 1)
        motor_neurons = _check_int("motor_neurons", motor_neurons, 1)
        super().__init__(sum(sizes) + command_neurons + motor_neurons)
        self.set_output_dim(motor_neurons)
        self._inter_layer_sizes = sizes
        self._num_inter_neurons = sum(sizes)
        self._num_command_neurons = command_neurons
        self._num_motor_neurons = motor_neurons
        self._sensory_fanout = _check_int("sensory_fanout", sensory_fanout, 1)
        self._inter_fanout = _check_int("inter_fanout", inter_fanout, 1)
        self._recurrent_command_synapses = _check_int("recurrent_command_synapses", recurrent_command_synapses, 0)
        self._motor_fanin = _check_int("motor_fanin", motor_fanin, 1)
        self._seed = int(seed)
        label = [f"inter_neurons[{k}]" if self._inter_as_list else "inter_neurons" for k in range(len(sizes))]
        if motor_fanin > command_neurons:
            raise ValueError(f"motor_fanin={motor_fanin} exceeds command_neurons={command_neurons}")
        if sensory_fanout > sizes[0]:
            raise ValueError(f"sensory_fanout={sensory_fanout} exceeds {label[0]}={sizes[0]}")
        for k in range(1, len(sizes)):
            if inter_fanout > sizes[k]:
                raise ValueError(
                    f"inter_fanout={inter_fanout} exceeds {label[k]}={sizes[k]} (the fan-out of inter layer "
                    f"{k - 1} onto inter layer {k})"
                )
        if inter_fanout > command_neurons:
            raise ValueError(f"inter_fanout={inter_fanout} exceeds command_neurons={command_neurons}")
        self._motor_neurons = list(range(0, motor_neurons))
        self._command_neurons = list(range(motor_neurons, motor_neurons + command_neurons))
        self._inter_layers: list[list[int]] = []
        first = motor_neurons + command_neurons
        for size in sizes:
            self._inter_layers.append(list(range(first, first + size)))
            first += size
        self._inter_neurons = list(range(motor_neurons + command_neurons, self.units))
        self._rng = np.random.RandomState(self._seed)
        self._num_sensory_neurons = 0
        self._sensory_neurons: list[int] = []

    @property
    def num_layers(self) -> int:
        return len(self._inter_layers) + 2

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        layers = [*self._inter_layers, self._command_neurons, self._motor_neurons]
        if isinstance(layer_id, bool) or not isinstance(layer_id, (int, np.integer)) or not 0 <= layer_id < len(layers):
            inter = "0 (inter)" if len(layers) == 3 else f"0..{len(layers) - 3} (inter)"
            raise ValueError(
                f"layer_id must be {inter}, {len(layers) - 2} (command) or {len(layers) - 1} (motor); got {layer_id}"
            )
        return list(layers[layer_id])

    def get_type_of_neuron(self, neuron_id: int) -> str:
        if neuron_id < self._num_motor_neurons:
            return "motor"
        if neuron_id < self._num_motor_neurons + self._num_command_neurons:
            return "command"
        return "inter"

    def _init_args(self) -> dict[str, Any]:
        return {
            "inter_neurons": list(self._inter_layer_sizes) if self._inter_as_list else self._num_inter_neurons,
            "command_neurons": self._num_command_neurons,
            "motor_neurons": self._num_motor_neurons,
            "sensory_fanout": self._sensory_fanout,
            "inter_fanout": self._inter_fanout,
            "recurrent_command_synapses": self._recurrent_command_synapses,
            "motor_fanin": self._motor_fanin,
            "seed": self._seed,
        }

    def _restore_after_build(self) -> None:
        assert self.input_dim is not None
        self._num_sensory_neurons = self.input_dim
        self._sensory_neurons = list(range(self.input_dim))

    def _connect(self, sources: list[int], targets: list[int], fanout: int, sensory: bool, cap: int) -> None:
        """Each source draws ``fanout`` distinct targets; unreached targets get a mean fan-in
        (at least 1, at most ``cap``: ncps caps the inter->command fan-in at the command count)."""
        add = self.add_sensory_synapse if sensory else self.add_synapse
        unreached = list(targets)
        for src in sources:
            for dest in self._rng.choice(targets, size=fanout, replace=False):
                if dest in unreached:
                    unreached.remove(dest)
                add(src, int(dest), int(self._rng.choice([-1, 1])))
        fanin = int(np.clip(int(len(sources) * fanout / len(targets)), 1, cap))
        for dest in unreached:
            for src in self._rng.choice(sources, size=fanin, replace=False):
                add(int(src), dest, int(self._rng.choice([-1, 1])))

    def _build_sensory(self) -> None:
        self._restore_after_build()
        # The order of the stages fixes the random stream (and matches ncps for one inter layer):
        # sensory -> inter[0], inter[k] -> inter[k+1], last inter -> command, recurrent command, motor.
        inter = self._inter_layers
        self._connect(self._sensory_neurons, inter[0], self._sensory_fanout, True, cap=self._num_sensory_neurons)
        for src_layer, dest_layer in itertools.pairwise(inter):
            self._connect(src_layer, dest_layer, self._inter_fanout, False, cap=len(dest_layer))
        self._connect(inter[-1], self._command_neurons, self._inter_fanout, False, cap=self._num_command_neurons)
        for _ in range(self._recurrent_command_synapses):
            src = int(self._rng.choice(self._command_neurons))
            dest = int(self._rng.choice(self._command_neurons))
            self.add_synapse(src, dest, int(self._rng.choice([-1, 1])))
        # command -> motor is drawn from the motor side (fan-in), unreached command neurons fan out
        unreached = list(self._command_neurons)
        for dest in self._motor_neurons:
            for src in self._rng.choice(self._command_neurons, size=self._motor_fanin, replace=False):
                if src in unreached:
                    unreached.remove(src)
                self.add_synapse(int(src), dest, int(self._rng.choice([-1, 1])))
        fanout = int(
            np.clip(
                int(self._num_motor_neurons * self._motor_fanin / self._num_command_neurons),
                1,
                self._num_motor_neurons,
            )
        )
        for src in unreached:
            for dest in self._rng.choice(self._motor_neurons, size=fanout, replace=False):
                self.add_synapse(src, int(dest), int(self._rng.choice([-1, 1])))


class AutoNCP(NCP):
    """An NCP sized from the number of units and outputs alone (the ncps heuristic).

    ``units - output_size`` neurons are split 60/40 into inter and command neurons; fan-outs are the
    layer sizes times ``1 - sparsity_level``. ``inter_layers`` (default 1, the ncps graph) spreads
    the inter neurons over that many layers, as evenly as possible (the first layers take the
    remainder); the inter fan-out then follows the smallest layer it feeds.
    """

    def __init__(
        self,
        units: int,
        output_size: int,
        sparsity_level: float = 0.5,
        seed: int = 22222,
        inter_layers: int = 1,
    ) -> None:
        units = _check_int("units", units, 4)
        output_size = _check_int("output_size", output_size, 1)
        inter_layers = _check_int("inter_layers", inter_layers, 1)
        if output_size >= units - 2:
            raise ValueError(f"output_size must be < units - 2; got units={units}, output_size={output_size}")
        if not 0.1 <= float(sparsity_level) <= 0.9:
            raise ValueError(f"sparsity_level must be in [0.1, 0.9]; got {sparsity_level}")
        self._output_size = output_size
        self._sparsity_level = float(sparsity_level)
        self._inter_layer_count = inter_layers
        density = 1.0 - self._sparsity_level
        inter_and_command = units - output_size
        command = max(int(0.4 * inter_and_command), 1)
        inter = inter_and_command - command
        if inter < inter_layers:
            raise ValueError(
                f"inter_layers={inter_layers} needs at least {inter_layers} inter neurons; units={units}, "
                f"output_size={output_size} leave {inter} (and {command} command neurons)"
            )
        sizes = [inter // inter_layers + (1 if k < inter % inter_layers else 0) for k in range(inter_layers)]
        super().__init__(
            inter if inter_layers == 1 else sizes,
            command,
            output_size,
            sensory_fanout=max(int(sizes[0] * density), 1),
            inter_fanout=max(int(min([*sizes[1:], command]) * density), 1),
            recurrent_command_synapses=max(int(command * density * 2), 1),
            motor_fanin=max(int(command * density), 1),
            seed=seed,
        )

    def _init_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "units": self.units,
            "output_size": self._output_size,
            "sparsity_level": self._sparsity_level,
            "seed": self._seed,
        }
        if self._inter_layer_count != 1:
            args["inter_layers"] = self._inter_layer_count
        return args


def wiring_from_config(config: dict[str, Any]) -> Wiring:
    """Rebuild any wiring from its ``get_config()`` dict."""
    return Wiring.from_config(config)
