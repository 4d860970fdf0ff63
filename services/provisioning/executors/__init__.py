"""Executors carry out provisioning commands at the source: Okta and GitHub over their REST APIs, and a
manual executor (a person does it and attests) for everything else."""

from provisioning.executors.base import Execution, ExecutionStatus, Executor, Executors
from provisioning.executors.github import GitHubExecutor
from provisioning.executors.manual import ManualExecutor
from provisioning.executors.okta import OktaExecutor

__all__ = [
    "Execution",
    "ExecutionStatus",
    "Executor",
    "Executors",
    "GitHubExecutor",
    "ManualExecutor",
    "OktaExecutor",
]
