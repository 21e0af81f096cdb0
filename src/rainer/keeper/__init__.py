"""The ZooKeeper half of Rainer: the newest commit of every key, published to ZooKeeper.

- ``keeper.Keeper`` reads and writes ``<path>/data/<key>`` under the original's save rules;
- ``mirror.Mirror`` is a live, read-only view of those nodes fed by watches;
- ``publishing.PublishingStorage`` publishes every commit after it is durable in the database;
- ``autopublisher.AutoPublisher`` heals ZooKeeper from the database, on one elected leader;
- ``link.ZooKeeperLink`` is what ``rainer serve --zookeeper`` runs: the database published, with
  its mirror and auto-publisher, all on one client and one keeper.
- ``security`` holds the servers' ZooKeeper identity (digest credentials, never logged), the ACL
  of every node they create, and the TLS settings of their connection.

kazoo is an optional dependency (``pip install rainer-diary[zookeeper]``); only this package
imports it.
"""

from __future__ import annotations
