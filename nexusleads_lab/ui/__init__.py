"""Views over the assistant: the cell renderers (``render``), the live turn view (``turn``), the
confirm card (``confirm``), charts (``charts``) and, separately, the chat panel (``panel``)."""
