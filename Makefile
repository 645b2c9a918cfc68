# The two commands of the README. Each sets itself up (venv, ROS 2 wheels, torch, colcon build)
# and is idempotent.
.PHONY: demo test test-unit setup bench soak clean

# MODEL=drivable (or any builtin name / model file) runs the demo with another model.
demo: setup
	bash scripts/run.sh python -m devtools.demo $(if $(MODEL),--model $(MODEL))

test: setup
	bash scripts/test.sh

# The ROS-free core suite alone (seconds): no node processes, no DDS.
test-unit: setup
	bash scripts/test.sh -m "not ros" test/unit

bench: setup
	bash scripts/run.sh python bench/run.py

# 1080p at 30 Hz for 2 minutes with every output subscribed: memory must stay flat (bench/soak.py).
soak: setup
	bash scripts/run.sh python bench/soak.py

setup:
	bash scripts/setup.sh

clean:
	rm -rf build install log out
