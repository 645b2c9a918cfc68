# The two commands of the README. Each sets itself up (venv, ROS 2 wheels, torch, colcon build)
# and is idempotent. `make demo` sets up only what the demo needs.
.PHONY: demo test test-unit test-stock test-humble test-kilted setup setup-triton setup-kilted build \
        setup-upstream setup-browser setup-datumaro bench soak clean

# MODEL=drivable (or any builtin name / model file) runs the demo with another model.
demo: setup
	bash scripts/run.sh python -m devtools.demo $(if $(MODEL),--model $(MODEL))

# Every environment (scripts/test.sh): the whole suite on ROS 2 Jazzy, the node tests again on
# Kilted (until its end of life), the ROS-free tests under stock Jazzy (Python 3.12) and Humble
# (Python 3.10) versions; each sets itself up.
test: setup setup-triton setup-upstream setup-browser setup-datumaro
	bash scripts/test.sh

# The ROS-free core suite alone (seconds): no node processes, no DDS.
test-unit: setup
	bash scripts/test.sh -m "not ros" test/unit

# The ROS-free tests alone under the stock versions (.venv-stock, requirements-stock.txt).
test-stock:
	bash scripts/test_rosfree.sh stock

# The ROS-free tests alone under Humble's versions (.venv-humble, requirements-humble.txt).
test-humble:
	bash scripts/test_rosfree.sh humble

# The node tests alone on ROS 2 Kilted (.venv-kilted, requirements-kilted.txt).
test-kilted: setup-kilted
	SEG_PERCEPTION_DISTRO=kilted bash scripts/test.sh test/ros

bench: setup
	bash scripts/run.sh python bench/run.py

# 1080p at 30 Hz for 2 minutes with every output subscribed: memory must stay flat (bench/soak.py).
soak: setup
	bash scripts/run.sh python bench/soak.py

setup:
	bash scripts/setup.sh

# serve_triton's environment (.venv-triton); serve_triton also makes it on its first run.
setup-triton: setup
	bash scripts/setup_triton.sh

setup-kilted:
	bash scripts/setup_distro.sh kilted

# install/ again from the sources (after editing seg_perception/), without the venv step.
build:
	bash scripts/build.sh

# The upstream launch, launch_ros, bondpy (+ interfaces) from ../shared/upstream, for the tests.
setup-upstream: setup
	bash scripts/setup_upstream.sh

# Headless Chromium (Debian's chromium via apt, where apt is available) for the live-view test.
setup-browser:
	bash scripts/setup_browser.sh

# Datumaro (CVAT's importer) in build/venv-datumaro for the real-reader tests; they skip without it.
setup-datumaro:
	bash scripts/setup_datumaro.sh || echo "[setup-datumaro] not built: test/unit/test_real_readers.py skips its Datumaro tests"

clean:
	rm -rf build install log out .venv-stock .venv-humble .venv-kilted
