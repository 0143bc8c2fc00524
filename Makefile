# Two entry points, each of which sets up everything it needs on a fresh machine:
#   make quickstart   build the default data, train a tiny model, sample and evaluate it
#   make test         lint, format check and the whole test suite; then, as root, the sandbox
#                     tests again as an unprivileged user (the no-root isolation paths)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.editlm-installed
SANDBOX_USER ?= editlm-sandbox-test
SANDBOX_TESTS := tests/test_sandbox.py tests/test_sandbox_hostile.py tests/test_channel.py

.PHONY: install quickstart test test-unprivileged sandbox-tools page-tools bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first and pinned, so that no other package can pull a newer (CUDA, multi-GB) build.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/editlm quickstart

# bubblewrap (the sandbox's second isolation path) and setfacl (for the unprivileged run), from
# Debian's packages, when missing and when we may install them.
sandbox-tools:
	@if [ "$$(id -u)" = 0 ] && ! { command -v bwrap && command -v setfacl; } >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap acl) >/dev/null \
		|| echo "warning: could not install bubblewrap/acl; their tests will be skipped"; fi

# headless Chromium for the page test (a person's use of the page at /), from Debian's packages.
page-tools:
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
		|| echo "warning: could not install chromium; the page test will be skipped"; fi

test: $(STAMP) sandbox-tools page-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -n 2 -q
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory test-unprivileged; fi

# The sandbox tests as an ordinary user (made here if missing). It may only search, not list, the
# directories above the interpreter and the checkout (an ACL for that user alone, or o+x where
# there are no ACLs), and writes nothing into the checkout.
test-unprivileged: $(STAMP) sandbox-tools
	@id -u $(SANDBOX_USER) >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin $(SANDBOX_USER)
	@for target in "$$(readlink -f $(PY))" "$$(pwd)/src" "$$(pwd)/tests" "$$(readlink -f $(VENV))/lib"; do \
		dir="$$(dirname "$$target")"; \
		while [ "$$dir" != / ]; do \
			runuser -u $(SANDBOX_USER) -- test -x "$$dir" 2>/dev/null || \
				setfacl -m "u:$(SANDBOX_USER):x" "$$dir" 2>/dev/null || chmod o+x "$$dir"; \
			dir="$$(dirname "$$dir")"; \
		done; \
	done
	cd /tmp && runuser -u $(SANDBOX_USER) -- env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 CI=true \
		PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$(CURDIR)/src" \
		"$(abspath $(PY))" -m pytest -q -p no:cacheprovider --rootdir="$(CURDIR)" \
		$(addprefix $(CURDIR)/,$(SANDBOX_TESTS))
