"""ISMN in-situ data, the ground floor the label merge (``transforms.merge``)
and a map's validation against sensors stand on: a download's files and
their catalog (``listing``: networks, stations, sensors from file names; the
0.05 m soil-moisture sensor rule), reading one sensor's readings through the
``ismn`` package (``ismn_files``), and the released +-tolerance window rule
(``window``).
"""
