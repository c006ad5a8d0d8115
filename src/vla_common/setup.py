# SPDX-License-Identifier: Apache-2.0
"""ament_python setup for vla_common (colcon build); pip users install the top-level pyproject.toml."""

import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'vla_common'


def package_files(pattern: str) -> list[str]:
    """Shipped assets (URDF, YAML, checkpoints) matched relative to this folder."""
    return [f for f in glob(os.path.join(package_name, pattern), recursive=True) if os.path.isfile(f)]


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: [os.path.relpath(f, package_name) for f in package_files('**/*')
                                  if not f.endswith(('.py', '.pyc'))]},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        # The workspace-level launch files and parameter YAML, so that `ros2 launch vla_common
        # sim.launch.py` works and vla_common.graph.config_dir() finds share/vla_common/config.
        (os.path.join('share', package_name, 'launch'), sorted(glob('../../launch/*.launch.py'))),
        (os.path.join('share', package_name, 'config'), sorted(glob('../../config/*.yaml'))),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='VLA stack maintainers',
    maintainer_email='maintainers@vla-stack.dev',
    description='Message conversions, QoS, config, node-graph description and the vla command line.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'vla = vla_common.cli:main',
        ],
    },
)
