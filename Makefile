# Two commands: `make demo` and `make test`. Each creates .venv when missing.
# torch goes in first, pinned (a bare `torch` requirement pulls GBs of CUDA wheels).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.cellsynth-installed

.PHONY: demo test venv clean bench test-ecosystem ecosystem-envs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/cellsynth demo --out demo_output

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo_output .pytest_cache

# ---- ecosystem proofs: each consumer's own code, in its own environment (large; not part of `make test`).
# The exports are made by this checkout's cellsynth in $(VENV); each consumer env holds only the consumer.
# torch is pinned in the same pip call wherever a consumer depends on it (see ECOSYSTEM.md: torchvision trap).
ECO_ENVS := cellpose stardist nnunet light napari bioimageio
ECO_PKGS_cellpose := "$(TORCH_SPEC)" "cellpose>=3.1,<3.2" "numpy<2.1"
ECO_PKGS_stardist := "tensorflow-cpu>=2.16" "stardist==0.9.2" "csbdeep==0.8.2"
ECO_PKGS_nnunet := "$(TORCH_SPEC)" "nnunetv2>=2.5,<2.9"
ECO_PKGS_light := "py-ctcmetrics>=1.3" "ome-zarr>=0.10" "ome-zarr-models"
ECO_PKGS_bioimageio := "$(TORCH_SPEC)" "bioimageio.core>=0.11,<0.12" "bioimageio.spec>=0.5.12" "pydantic<2.14"
# the napari plugin is cellsynth itself: this env holds cellsynth (editable) + napari + Qt
ECO_PKGS_napari := "$(TORCH_SPEC)" -e ".[napari]" "npe2>=0.7"

.venv-%/.ok:
	test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install -q $(ECO_PKGS_$*) "pytest>=7" tifffile
	touch $@

ecosystem-envs: $(foreach e,$(ECO_ENVS),.venv-$(e)/.ok)

test-ecosystem: $(STAMP) ecosystem-envs
	@for e in $(ECO_ENVS); do echo "== $$e"; \
	  CELLSYNTH_ECOSYSTEM=1 CELLSYNTH_PYTHON=$(abspath $(BIN)/python) \
	  .venv-$$e/bin/python -m pytest -q -p no:cacheprovider tests/ecosystem/test_$$e.py || exit 1; done
