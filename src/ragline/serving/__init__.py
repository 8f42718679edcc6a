"""Ray Serve: retrieval and generation scale apart, composed through handles behind the ingress.

    app.py           the bound application (``app_builder`` for a RayService), run on a local Ray, stopped
    deployments.py   Ingress (the FastAPI app of ragline.api) -> Retriever (search) and Generator (answer)
    backend.py       the ingress's QueryBackend: calls the deployments, resends a call whose replica died
    replica_copy.py  each retrieving replica's private copy of a local index
    data_plane.py    Serve's data plane on the local Ray (ragline.ray_local), its listeners on loopback

Each deployment takes its replicas, CPUs and autoscaling from ``settings.serve`` (ragline.api.settings).
Importing this package loads no Ray: the modules do.
"""
