"""Drop-in session backends for agent frameworks, each in a module of its own that imports its
framework: install the framework with the extra of the same name (``pip install
"sessionstore-client[openai-agents]"``) and import the module you use, e.g.
``from sessionstore.integrations.openai_agents import SessionStoreSession``.
"""
