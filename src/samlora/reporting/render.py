"""Execute a notebook template with papermill and export it to HTML, both atomically."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

KERNEL_NAME = "python3"
#: nbconvert template of the HTML export: JupyterLab's, without CDN scripts (see its file).
HTML_TEMPLATE = "samlora"
TEMPLATE_DIR = Path(__file__).resolve().parent / "nbconvert"


def _plain(value: Any) -> Any:
    """Parameters as papermill can write them: paths become str, containers recurse."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def ensure_kernel(kernel_name: str = KERNEL_NAME) -> str:
    """Make sure Jupyter finds ``kernel_name``; return the interpreter it runs.

    jupyter_client falls back to the running interpreter's ipykernel for ``python3``;
    should that fail, a kernelspec is registered under ``sys.prefix`` (the venv), never
    in the user's home.

    Raises:
        RuntimeError: no kernel of that name can be found or registered: ipykernel is not
            installed, or a kernelspec that cannot be used (e.g. one naming a kernel
            provisioner that is not installed) on ``JUPYTER_PATH`` or in the user's Jupyter
            folder hides the one registered under ``sys.prefix``.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        if kernel_name != KERNEL_NAME:
            raise RuntimeError(f"no Jupyter kernel named '{kernel_name}'") from None
        try:
            from ipykernel.kernelspec import install

            install(prefix=sys.prefix, kernel_name=kernel_name)
            log.info("registered Jupyter kernel '%s' under %s", kernel_name, sys.prefix)
            spec = KernelSpecManager().get_kernel_spec(kernel_name)
        except ImportError as err:
            raise RuntimeError(f"no usable Jupyter kernel '{kernel_name}' (install ipykernel "
                               f"in this environment): {err}") from err
        except NoSuchKernel as err:  # Jupyter still picks a spec other than the new one
            found = KernelSpecManager().find_kernel_specs().get(kernel_name)
            why = (f"the kernelspec in {found}, found before the one registered under "
                   f"{sys.prefix}, cannot be used; remove or fix it" if found else
                   f"Jupyter does not search {sys.prefix}, where it was registered")
            raise RuntimeError(f"no usable Jupyter kernel '{kernel_name}' ({why}): "
                               f"NoSuchKernel: {err}") from err
    interpreter = spec.argv[0] if spec.argv else "?"
    if interpreter not in ("python", "python3") and (
        Path(interpreter).resolve() != Path(sys.executable).resolve()
    ):
        log.warning("kernel '%s' runs %s, not this interpreter %s: samlora may be missing "
                    "there", kernel_name, interpreter, sys.executable)
    return interpreter


def render_notebook(
    template: Path,
    out_ipynb: Path,
    out_html: Path,
    parameters: dict[str, Any],
    *,
    kernel_name: str = KERNEL_NAME,
    cwd: Path | None = None,
) -> None:
    """Run a papermill template and write the executed notebook and its HTML export.

    The notebook runs in a temporary file beside ``out_ipynb``; both outputs are renamed
    into place only when execution and export succeed, so a failing notebook leaves
    neither (nor a stale half-written one) behind.

    Args:
        template: notebook with a cell tagged ``parameters``.
        out_ipynb: executed notebook.
        out_html: HTML export of the executed notebook (code cells included; figures
            embedded, no script fetched from elsewhere: it opens complete offline).
        parameters: values injected after the ``parameters`` cell (Path values become str).
        kernel_name: Jupyter kernel to run.
        cwd: working folder of the kernel (relative paths resolve there); default the
            current folder.

    Raises:
        papermill.PapermillExecutionError: a cell raised (its traceback is in the message).
        FileNotFoundError: the template does not exist.
    """
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    template = Path(template)
    if not template.is_file():
        raise FileNotFoundError(f"notebook template {template} not found")
    ensure_kernel(kernel_name)
    log.info("executing %s -> %s", template, out_ipynb)
    with atomic_path(out_ipynb) as tmp_nb, atomic_path(out_html) as tmp_html:
        pm.execute_notebook(
            str(template), str(tmp_nb), parameters=_plain(parameters), kernel_name=kernel_name,
            cwd=str(cwd) if cwd is not None else None, progress_bar=False, log_output=False,
        )
        exporter = HTMLExporter(template_name=HTML_TEMPLATE,
                                extra_template_basedirs=[str(TEMPLATE_DIR)])
        body, _ = exporter.from_notebook_node(nbformat.read(tmp_nb, as_version=4))
        tmp_html.write_text(body, encoding="utf-8")
    log.info("wrote %s and %s", out_ipynb, out_html)
