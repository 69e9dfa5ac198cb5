"""hospapp: the stand-in web service for the lab's four patient-facing systems.

One codebase; the service (portal, ih, waiting, journey) is chosen by the config file. Standard library
only, plus psycopg2 (Debian's python3-psycopg2), which is imported only where the database is used, so
that ``hospapp.fakedata`` can be imported by tests on any interpreter.
"""

SERVICES = ("portal", "ih", "waiting", "journey")
