"""The real language model, tensor-parallel over K devices, with your own all-reduce.

:class:`Model` opens a GGUF model (``airinfer``'s catalogue name, e.g. ``"smollm2-135m"``,
fetched and cached on first use, or a path) and runs ``airinfer eval`` / ``airinfer generate``
on it in this process, with the same options and the same numbers as the commands. The model
is split Megatron-style: each block makes two all-reduces of an ``n_embd``-wide vector per
token (after the attention output projection and after the MLP down projection), and
``link`` decides what every device receives:

- ``None`` (or ``"ideal"``): the exact sum, in device order;
- a dict of ``airinfer eval --config`` keys (``{"scheme": "aircomp", "snr_db": 10,
  "design": "sca", ...}``, see ``airinfer eval --help``): the simulated radio of ``airinfer eval
  --scheme``, with its latency report (eval only);
- a Python callable ``link(partials, site)`` -- your own all-reduce::

      def link(partials: list[np.ndarray], site: int) -> list[np.ndarray] | np.ndarray:
          ...

  ``partials[k]`` is device k's partial sum, a float32 array of shape ``(n_tokens, n_embd)``
  (``n_tokens`` = the prompt or chunk length in a prefill, 1 in a decode step), a fresh copy
  the callable may change. ``site = 2 * layer + 0`` after the attention output projection of
  block ``layer`` and ``2 * layer + 1`` after its MLP down projection, so a forward pass calls
  ``site = 0, 1, ..., 2 * n_layer - 1`` in order. Return what each device receives: a list of K
  arrays, or one array that every device receives (a broadcast); shape ``(n_tokens, n_embd)``,
  anything NumPy can turn into float32. An exception raised in the callable stops the forward
  pass and comes out of :meth:`Model.eval` / :meth:`Model.generate` unchanged.

The GIL is released while Rust computes (and taken for each call of a callable link); Ctrl-C
stops an evaluation at its next all-reduce (not one with a ``scheme``, which runs to its end).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from . import _airinfer

__all__ = ["Model", "Link"]

#: A callable all-reduce: ``link(partials, site) -> list of K arrays | one array``.
Link = Callable[[list[npt.NDArray[np.float32]], int], Union[Sequence[npt.ArrayLike], npt.ArrayLike]]


def _num(x: float) -> str:
    # repr round-trips a float; the CLI parses it back to the same f64 / f32
    return repr(float(x))


def _split_args(devices: Optional[int], shares: Union[None, str, Sequence[float]]) -> list[str]:
    a: list[str] = []
    if devices is not None:
        a.append(f"--devices={int(devices)}")
    if shares is not None:
        if isinstance(shares, str):
            a.append(f"--shares={shares}")
        else:
            a.append("--shares=" + ",".join(_num(s) for s in np.asarray(shares, dtype=float).reshape(-1)))
    return a


def _link(link: Any) -> tuple[Optional[str], Optional[Callable]]:
    """(the --config TOML of a scheme dict, a callable) of a ``link`` argument."""
    if link is None or (isinstance(link, str) and link == "ideal"):
        return None, None
    if isinstance(link, Mapping):
        return _airinfer.toml_document(dict(link)), None
    if callable(link):
        return None, link
    raise ValueError(
        f"link: {link!r} is not a link: give None or 'ideal', a dict of scheme options "
        "({'scheme': 'aircomp', 'snr_db': 10, ...}) or a callable link(partials, site)"
    )


class Model:
    """A GGUF model, open, ready to evaluate and generate tensor-parallel.

    ``path_or_name``: a catalogue name (``"smollm2-135m"``, ``"gemma3-270m"``; fetched into
    ``$AIRINFER_HOME`` on first use) or a GGUF file path. ``quiet=False`` shows the fetch's
    progress. The last split (devices and shares) is kept, so a sweep over links reloads
    nothing.
    """

    def __init__(self, path_or_name: Union[str, os.PathLike] = "smollm2-135m", *, quiet: bool = True):
        self._m = _airinfer.Model(os.fspath(path_or_name), quiet)

    @property
    def path(self) -> str:
        """The GGUF file."""
        return os.fspath(self._m.path)

    @property
    def config(self) -> dict[str, Any]:
        """The architecture: ``n_layer``, ``n_embd``, ``n_head``, ``n_head_kv``, ``n_ff``,
        ``vocab_size``, ``context_length``, ``architecture``."""
        return dict(self._m.config)

    def __repr__(self) -> str:
        return f"airinfer.Model({self.path!r})"

    def eval(
        self,
        text: Union[str, os.PathLike] = "lee-news",
        *,
        ctx: int = 512,
        devices: Optional[int] = None,
        shares: Union[None, str, Sequence[float]] = None,
        link: Union[None, str, Mapping[str, Any], Link] = None,
        max_tokens: Optional[int] = None,
        chunks: Optional[int] = None,
        sliding: Optional[int] = None,
        prefill: str = "int8",
        quiet: bool = True,
    ) -> dict[str, Any]:
        """Perplexity of ``text`` (a catalogue name, ``"lee-news"`` or ``"wikitext-2"``, or a
        file), as ``airinfer eval --json`` reports it.

        ``ctx``: chunk length (llama.cpp's protocol, the second half of each chunk scored) or
        window with ``sliding=stride``; ``max_tokens``: the text's first tokens only;
        ``chunks``: at most this many chunks; ``devices`` (equal shares) or ``shares`` (one
        number per device, or with an AirComp scheme an assignment by name: ``"sca"``,
        ``"uniform"``, ``"compute"``, ``"memory"``); ``link``: see the module. ``prefill``:
        ``"int8"`` (8-bit activations, as llama.cpp) or ``"f32"``.

        Returns the dict ``airinfer eval ... --json`` prints: ``perplexity``, ``nll_stderr``,
        ``tokens`` (scored), ``running_ppl``, ... (with a scheme: ``reference_perplexity``,
        ``agreement``, ``nmse``, ``ttft_ms``, ``ms_per_token``, ...). Raises ValueError with the
        CLI's message for bad options, and whatever a callable link raises.
        """
        # NAME=VALUE: a value that starts with '-' stays a value
        args = [f"--text={os.fspath(text)}", f"--ctx={int(ctx)}", f"--prefill={prefill}"]
        args += _split_args(devices, shares)
        if max_tokens is not None:
            args.append(f"--max-tokens={int(max_tokens)}")
        if chunks is not None:
            args.append(f"--chunks={int(chunks)}")
        if sliding is not None:
            args.append(f"--sliding={int(sliding)}")
        config, f = _link(link)
        return json.loads(self._m.eval(args, config, f, quiet))

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        chat: bool = False,
        devices: Optional[int] = None,
        shares: Optional[Sequence[float]] = None,
        link: Union[None, str, Link] = None,
        quiet: bool = True,
    ) -> dict[str, Any]:
        """Generate up to ``max_tokens`` tokens after ``prompt`` (``chat=True``: wrapped in the
        model's chat template as a user message), sampling at ``temperature`` (0: greedy) with
        ``top_k`` / ``top_p`` and ``seed``, as ``airinfer generate --json``: returns ``text``,
        ``token_ids``, ``prompt_tokens``, ``stop`` (``"max_tokens"``, ``"context"`` or
        ``"end_of_generation"``), ``prefill_tok_s``, ``decode_tok_s``. ``link``: ``None``
        or a callable (see the module)."""
        if isinstance(link, Mapping):
            raise ValueError(
                "link: a scheme's simulated radio is for eval (airinfer eval --scheme); "
                "generate takes None or a callable link"
            )
        args = [f"--prompt={prompt}", f"--max-tokens={int(max_tokens)}"]
        args += [f"--temperature={_num(temperature)}", f"--top-k={int(top_k)}"]
        args += [f"--top-p={_num(top_p)}", f"--seed={int(seed)}"]
        if chat:
            args.append("--chat")
        args += _split_args(devices, shares)
        _, f = _link(link)
        return json.loads(self._m.generate(args, f, quiet))
