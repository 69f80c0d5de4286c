# The Littlest JupyterHub: forja for every student.
# 1. Install TLJH (its docs), then, as root, from a forja checkout:
#      ./install.sh --no-lab && deploy/setup-system.sh
# 2. Copy this file to /opt/tljh/config/jupyterhub_config.d/forja.py and run
#      tljh-config set limits.memory 2G        # see deploy/README.md, "Sizing"
#      tljh-config set services.cull.timeout 1800
#      tljh-config reload
# TLJH's spawner is systemd's: each student's server is a unit of its own, so
# the limits below are cgroup limits, and stopping a server kills the unit.

# Students' servers run from forja's environment (JupyterLab, the kernelspec
# whose kernel.json points at /opt/forja and the shared toolchain).
c.Spawner.cmd = ["/opt/forja/venv/bin/jupyterhub-singleuser"]
c.Spawner.environment = {"PATH": "/opt/forja/venv/bin:/usr/local/bin:/usr/bin:/bin"}
c.Spawner.default_url = "/lab/tree/notebooks"

# At most 512 tasks (processes and threads) per student: a fork bomb in a cell
# stops there instead of taking the machine. forja itself refuses more than
# 256 live children per process (FORJA_MAX_CHILDREN); a kernel with
# rust-analyzer and cargo uses ~60 tasks.
c.SystemdSpawner.unit_extra_properties = {"TasksMax": "512"}


# The lessons, copied once into each new student's home (never overwritten).
def copy_lessons(spawner):
    import os
    import pwd
    import shutil

    user = pwd.getpwnam(spawner.user.name)
    dest = os.path.join(user.pw_dir, "notebooks")
    if os.path.isdir(user.pw_dir) and not os.path.exists(dest):
        shutil.copytree("/opt/forja/notebooks", dest)
        for root, dirs, files in os.walk(dest):
            for name in [root] + [os.path.join(root, f) for f in files]:
                os.chown(name, user.pw_uid, user.pw_gid)


c.Spawner.pre_spawn_hook = copy_lessons
