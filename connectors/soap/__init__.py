"""SOAP poll connector: pages a ministry system's query operations over time windows (zeep).

``poll.SoapPollConnector`` is the plugin (registry type ``soap_poll``); ``config`` holds its
options, ``client`` the blocking zeep side, ``faults`` the translation of SOAP Faults and transport
errors, ``window`` the time-window cursor and ``throttle`` the source's call limits. Schema-instance
attributes (``xsi:nil``, ``xsi:type``) are resolved by the XML codec.
"""
