"""Building blocks of the REST pull connector (connectors/rest_poll.py): profiles, auth, paging, pacing."""
