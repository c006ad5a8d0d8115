# SPDX-License-Identifier: Apache-2.0
"""ament_python setup for vla_perception (colcon build); pip users install the top-level pyproject.toml."""

import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'vla_perception'


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
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='VLA stack maintainers',
    maintainer_email='maintainers@vla-stack.dev',
    description='Camera sources, dense CLIP features and multi-view fusion into a 3D feature cloud.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'perception_node = vla_perception.perception_node:main'
        ],
    },
)
