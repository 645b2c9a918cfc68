# The two commands of the README. Each sets itself up (venv, ROS 2 wheels, torch, colcon build)
# and is idempotent.
.PHONY: demo test setup bench clean

demo: setup
	bash scripts/run.sh python -m seg_perception.demo

test: setup
	bash scripts/test.sh

bench: setup
	bash scripts/run.sh python bench/run.py

setup:
	bash scripts/setup.sh

clean:
	rm -rf build install log out
