"""UN/EDIFACT PAXLST and ICAO 9303 machine-readable zones: formats several parts of the hub read and write.

Platform code (no service imports it from another): intake reads carriers' interchanges, the profiler's
interactive checks read iAPI requests and answer with CUSRES, offline screening
(`apihub rules test`, `apihub screen`) reads manifest files, and the demo, tests and benchmarks write them.

    syntax.py    character sets, service characters (UNA), the tokeniser: text -> segments
    dates.py     DTM formats and the century of two-digit years
    message.py   one message (UNH ... UNT) -> Manifest, with violations and field locations
    legs.py      the flight part of a message (TDT, LOC, DTM 189/232) -> carrier, flight, legs
    violations.py  the violations the reader answers with (segment, line and column; a cap per kind)
    reader.py    parse_paxlst: an interchange -> its messages, and what lies around them
    files.py     looks_like_paxlst, split_interchanges: a carrier's file -> its interchanges
    writer.py    render_paxlst / render_interchange: Manifests -> an interchange
    cusres.py    render_cusres / parse_cusres: the iAPI answer (CUSRES D:05B), one ERC directive per traveller
    mrz.py       verify_mrz, check_digit: layouts and check digits of ICAO Doc 9303 zones
"""
