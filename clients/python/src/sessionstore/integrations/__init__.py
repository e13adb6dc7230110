"""Session backends for agent frameworks, each an optional extra of sessionstore.

Each module imports its framework, so import the module itself, e.g.
``from sessionstore.integrations.langchain import SessionStoreChatMessageHistory``
(after ``pip install "sessionstore[langchain]"``) or
``from sessionstore.integrations.openai_agents import SessionStoreSession``
(after ``pip install "sessionstore[openai-agents]"``) or
``from sessionstore.integrations.adk import SessionStoreSessionService``
(after ``pip install "sessionstore[adk]"``).
"""
