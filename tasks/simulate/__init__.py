"""Simulate: every row of a scenario played as a conversation with the agent under test."""

from tasks.simulate.executor import (
    ChatContext,
    RunError,
    batch_task,
    create_run,
    exec_dir,
    execute,
    execution_lock,
    finish,
    finished_chats,
    load_execution,
    make_user_client,
    plan,
    run_async,
    run_chat,
    run_with_agent,
)

__all__ = ["ChatContext", "RunError", "batch_task", "create_run", "exec_dir", "execute", "execution_lock", "finish",
           "finished_chats", "load_execution", "make_user_client", "plan", "run_async", "run_chat", "run_with_agent"]
