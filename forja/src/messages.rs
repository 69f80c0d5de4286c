//! Every text of forja a student reads, in Spanish and English: the
//! messages of [`Error`](crate::Error), the words of its fragments
//! (`what`), and the headers and labels of forja's displays (tables,
//! timeline, progress).
//!
//! One enum with one `match` arm per message holding both languages (made
//! by [`catalogue!`](crate::catalogue); [`crate::lang`] says why an enum and
//! not a crate such as `fluent`). `{name}` marks a value filled in at run
//! time. Spanish: rioplatense voseo, as the lessons, and the course's words
//! (proceso hijo, tubería, cola, interbloqueo, sección crítica).

use std::borrow::Cow;

use crate::lang::Lang;

crate::catalogue! {
    lang: crate::lang::Lang::current;
    // ---- forja::Error ----
    /// `Error::Os`.
    ErrOs {
        es: "falló una llamada al sistema operativo en el proceso {pid} ({what}): {source}",
        en: "{what} failed in process {pid}: {source}"
    }
    /// `Error::Input`.
    ErrInput {
        es: "no se pudo leer la entrada en el proceso {pid}: {reason}",
        en: "could not read input in process {pid}: {reason}"
    }
    /// `Error::Display`.
    ErrDisplay {
        es: "no se pudo mandar una visualización al kernel: {message}",
        en: "could not send a display to the kernel: {message}"
    }
    /// `Error::Interrupted` in the kernel (the kernel's own error follows).
    ErrInterruptedShort {
        es: "interrumpido",
        en: "interrupted"
    }
    /// `Error::Interrupted` outside the kernel.
    ErrInterrupted {
        es: "interrumpido por el kernel: la celda se detuvo (lo vio el proceso {pid}), así que \
             toda llamada a forja en esta celda falla enseguida y los procesos que arrancó se \
             están deteniendo; las variables de las celdas anteriores se conservan: corregí la \
             celda y volvé a ejecutarla (fuera del kernel, forja::registry::clear_interrupt() \
             baja la bandera)",
        en: "interrupted by the kernel: the cell was stopped (seen in process {pid}), so every \
             forja call in this cell now fails at once and the processes it started are being \
             stopped; variables from earlier cells are kept: fix the cell and run it again \
             (outside the kernel, forja::registry::clear_interrupt() lowers the flag)"
    }
    /// `Error::Eof`.
    ErrEof {
        es: "fin de archivo en {what} en el proceso {pid}: todos los procesos que podían \
             mandar por el otro extremo lo cerraron o terminaron, así que no va a llegar nada \
             más; dejá de recibir acá (si esperabas un mensaje, fijate si el que lo mandaba \
             se cayó)",
        en: "end of file on {what} in process {pid}: every process that could send on the other \
             end has closed it or exited, so nothing more will arrive; stop receiving here (if a \
             message was expected, check whether the sender crashed)"
    }
    /// `Error::BrokenPipe`.
    ErrBrokenPipe {
        es: "el proceso {pid} mandó por una tubería cuyo otro extremo está cerrado en todos los \
             procesos (el receptor terminó o lo soltó): nadie puede leer este mensaje",
        en: "process {pid} sent on a pipe whose other end is closed in every process (the \
             receiver exited or dropped it): nobody can read this message"
    }
    /// `Error::ProcessNotStarted`.
    ErrProcessNotStarted {
        es: "el proceso {name} todavía no se inició (en el proceso {pid}): llamá a start() \
             antes de {what}()",
        en: "process {name} has not been started (in process {pid}): call start() before \
             {what}()"
    }
    /// `Error::AlreadyStarted`.
    ErrAlreadyStarted {
        es: "el proceso {name} ya se inició (con pid {child}); un Process corre una sola vez: \
             creá un Process nuevo para volver a ejecutar la función",
        en: "process {name} was already started (as pid {child}); a Process runs only once: \
             make a new Process to run the function again"
    }
    /// `Error::NotOurChild`.
    ErrNotOurChild {
        es: "el proceso {name} (pid {child}) lo inició el proceso {parent}, así que solo ese \
             proceso puede hacerle {what}, no el proceso {pid}",
        en: "process {name} (pid {child}) was started by process {parent}, so only that \
             process can {what} it, not process {pid}"
    }
    /// `Error::TooManyChildren`.
    ErrTooManyChildren {
        es: "el proceso {pid} ya tiene {limit} procesos hijos vivos, que es el límite: hacé \
             join() de los que terminaron (o detené los que ya no necesitás) antes de iniciar \
             más. El límite protege a la máquina de una fork bomb (un bucle sin fin de \
             start()); para subirlo llamá a forja::registry::set_max_children(n) en ese \
             proceso, o definí la variable de entorno FORJA_MAX_CHILDREN antes de que el \
             proceso use forja por primera vez (como mucho 1024; cada proceso hijo tiene su \
             propio límite para sus propios hijos)",
        en: "process {pid} already has {limit} live child processes, the limit: join() the \
             ones that finished (or stop ones you no longer need) before starting more. The \
             limit protects the machine from a fork bomb (an endless loop of start()); to raise \
             it call forja::registry::set_max_children(n) in that process, or set the \
             FORJA_MAX_CHILDREN environment variable before the process first uses forja \
             (at most 1024; each child process has its own limit for its own children)"
    }
    /// The forja call an error propagated with `?` came from, and where
    /// (see `located`).
    CallFailedAt { es: "{call} falló en {at}", en: "{call} failed at {at}" }
    /// `Error::TaskPanicked`.
    ErrTaskPanicked {
        es: "una tarea hizo panic en el trabajador del pool {worker} (pid {worker_pid}): \
             {message}",
        en: "a task panicked in pool worker {worker} (pid {worker_pid}): {message}"
    }
    /// `Error::WorkerDied`.
    ErrWorkerDied {
        es: "el trabajador del pool {worker} (pid {worker_pid}) murió {how} mientras ejecutaba una \
             tarea, así que el resultado de esa tarea se perdió; el pool arrancó un trabajador de \
             reemplazo. ¿Lo mataron, o la tarea abortó o llamó a exit?",
        en: "pool worker {worker} (pid {worker_pid}) died {how} while running a task, so that \
             task's result is lost; the pool started a replacement worker. Was it killed, or \
             did the task abort or call exit?"
    }
    /// `Error::PoolInitializerFailed`.
    ErrPoolInitializerFailed {
        es: "falló el inicializador del pool en el trabajador con pid {worker_pid}: {message}; \
             corregí el inicializador y creá un Pool nuevo",
        en: "the pool's initializer failed in worker pid {worker_pid}: {message}; fix the \
             initializer and make a new Pool"
    }
    /// `Error::PoolClosed`.
    ErrPoolClosed {
        es: "el pool está {state} (proceso {pid}): no acepta más tareas; creá un Pool nuevo",
        en: "the pool is {state} (process {pid}): it takes no more tasks; make a new Pool"
    }
    /// `Error::PoolStillOpen`.
    ErrPoolStillOpen {
        es: "Pool::join() en el proceso {pid} esperaría para siempre: llamá primero a close() \
             (o terminate()) y después a join()",
        en: "Pool::join() in process {pid} would wait forever: call close() (or terminate()) \
             first, then join()"
    }
    /// `Error::Message`.
    ErrMessage {
        es: "no se pudo {action} un mensaje para {what} en el proceso {pid}: {message}",
        en: "could not {action} a message for {what} in process {pid}: {message}"
    }
    /// `Error::MessageTooLarge`.
    ErrMessageTooLarge {
        es: "el proceso {pid} recibió un mensaje de {len} bytes por una tubería cuyo límite es \
             de {max} bytes, así que lo rechazó en vez de reservar tanta memoria: o el emisor \
             mandó un mensaje más grande de lo que acepta este extremo (subí el límite con \
             .with_max_message_bytes(n) en el extremo que recibe), o algo que no es forja \
             escribió en la tubería. Este extremo ya no puede recibir más mensajes",
        en: "process {pid} received a message of {len} bytes on a pipe whose limit is {max} \
             bytes, so it was refused instead of allocating that much: either the sender sent \
             a larger message than this end accepts (raise the limit with \
             .with_max_message_bytes(n) on the receiving end), or something other than forja \
             wrote to the pipe. This end cannot receive any more messages"
    }
    /// `Error::Registry`.
    ErrRegistry {
        es: "el registro de procesos de forja no se puede usar en el proceso {pid}: {message}",
        en: "the forja process registry is unusable in process {pid}: {message}"
    }
    /// `Error::Cancelled`.
    ErrCancelled {
        es: "la tarea se canceló (proceso {pid}): Future::cancel() la sacó antes de que un \
             trabajador la empezara; enviala de nuevo para ejecutarla",
        en: "the task was cancelled (process {pid}): Future::cancel() took it before a worker \
             started it; submit it again to run it"
    }
    /// `Error::Timeout`.
    ErrTimeout {
        es: "se agotó el tiempo de espera en el proceso {pid} ({what}): no pasó nada antes \
             del plazo; esperá más, o fijate que los otros procesos sigan corriendo",
        en: "{what} timed out in process {pid}: nothing happened before the deadline; \
             wait longer, or check that the other processes are still running"
    }
    /// `Error::Full`.
    ErrFull {
        es: "la cola está llena (proceso {pid}): llegó a su maxsize; usá put() para esperar \
             lugar, o hacé que un consumidor saque elementos con get()",
        en: "the queue is full (process {pid}): its maxsize was reached; use put() to wait \
             for room, or have a consumer get() items"
    }
    /// `Error::Empty`.
    ErrEmpty {
        es: "la cola está vacía (proceso {pid}): no había nada para sacar; usá get() para \
             esperar un elemento, o fijate que haya un productor corriendo",
        en: "the queue is empty (process {pid}): there was nothing to take; use get() to wait \
             for an item, or check that a producer is running"
    }
    /// `Error::LockOwnerDied`.
    ErrLockOwnerDied {
        es: "el proceso o hilo {pid} murió mientras tenía {what} (en plena sección crítica), \
             así que los datos que protege pueden haber quedado a medio actualizar (lo vio el proceso {by}). Ahora \
             nadie tiene el lock, y todo acquire recibe este error hasta que alguien llame a \
             .recover(): eso te da el guard, así que revisá o arreglá los datos y después \
             soltá el guard para que el lock vuelva a servir",
        en: "process or thread {pid} died while holding {what}, so the data it protects may be \
             half-updated (seen by process {by}). Nobody holds the lock now, and every acquire \
             gets this error until someone calls .recover() on it: that gives the guard, so \
             check or repair the data, then drop the guard to make the lock usable again"
    }
    /// `Error::WouldDeadlock`.
    ErrWouldDeadlock {
        es: "el hilo {tid} del proceso {pid} ya tiene {what} con un guard que todavía no \
             soltó, y ese lock no es reentrante, así que esperarlo sería esperar para siempre \
             (un interbloqueo consigo mismo): {hint}",
        en: "thread {tid} of process {pid} already holds {what} through a guard it has not \
             dropped, and that lock is not re-entrant, so waiting for it would wait forever: \
             {hint}"
    }
    /// `Error::NothingToRecover`.
    ErrNothingToRecover {
        es: "el proceso {pid} llamó a recover() sobre {what}, pero ninguno de sus dueños murió \
             sin soltarlo (o alguien ya lo recuperó); usá acquire()",
        en: "process {pid} called recover() on {what}, but no holder of it died without \
             releasing it (or someone recovered it already); use acquire() instead"
    }
    /// `Error::NotHeld`.
    ErrNotHeld {
        es: "el proceso {pid} liberó {what}, que no estaba tomado: cada release va con un \
             acquire",
        en: "process {pid} released {what}, which is not held: each release must pair with \
             one acquire"
    }
    /// `Error::SemaphoreOverReleased`.
    ErrSemaphoreOverReleased {
        es: "el proceso {pid} liberó un BoundedSemaphore más veces de las que lo tomó (su \
             valor pasaría el inicial, {bound}): cada release va con un acquire",
        en: "process {pid} released a BoundedSemaphore more times than it was acquired (its \
             value would exceed the initial {bound}): pair each release with one acquire"
    }
    /// `Error::BrokenBarrier`.
    ErrBrokenBarrier {
        es: "la barrera está rota (lo vio el proceso {pid}): a alguien que esperaba se le \
             agotó el tiempo, o se llamó a abort() o reset(); llamá a reset() antes de volver \
             a usarla",
        en: "the barrier is broken (seen in process {pid}): a waiter timed out, or abort() or \
             reset() was called; call reset() before using it again"
    }
    /// `Error::TooManyTaskDone`.
    ErrTooManyTaskDone {
        es: "se llamó a task_done() más veces que elementos se pusieron en la cola (proceso \
             {pid}): llamalo exactamente una vez por cada elemento sacado con get()",
        en: "task_done() was called more times than items were put (process {pid}): call it \
             exactly once for each item taken with get()"
    }
    /// `Error::QueueClosed`.
    ErrQueueClosed {
        es: "el proceso {pid} cerró esta cola y después intentó poner algo: close() quiere \
             decir que este proceso no pone más elementos; poné antes de cerrar",
        en: "process {pid} closed this queue and then tried to put on it: close() means this \
             process puts no more items; put before closing"
    }
    /// `Error::QueueCorrupted`.
    ErrQueueCorrupted {
        es: "un proceso murió mientras pasaba un elemento grande por la cola (lo vio el \
             proceso {pid}); ya no se puede confiar en el contenido de la cola: creá una nueva",
        en: "a process died while moving a large item through the queue (seen in process \
             {pid}); the queue's contents can no longer be trusted: make a new queue"
    }
    /// `Error::SharedMemoryNotFound`.
    ErrSharedMemoryNotFound {
        es: "no hay memoria compartida llamada '{name}' para este usuario (proceso {pid}): \
             creala primero con SharedMemory::create, revisá cómo está escrito el nombre, o \
             quien la creó ya la desvinculó (el handle del creador desvincula el nombre al \
             soltarse)",
        en: "there is no shared memory named '{name}' for this user (process {pid}): create it \
             first with SharedMemory::create, check the spelling, or its creator already \
             unlinked it (a creator's handle unlinks the name when dropped)"
    }
    /// `Error::SharedMemoryExists`.
    ErrSharedMemoryExists {
        es: "ya existe memoria compartida llamada '{name}' para este usuario (proceso {pid}): \
             conectate a ella con SharedMemory::attach, elegí otro nombre, o desvinculá \
             primero la vieja",
        en: "shared memory named '{name}' already exists for this user (process {pid}): attach \
             to it with SharedMemory::attach, pick another name, or unlink the old one first"
    }
    /// `Error::SharedMemorySize`.
    ErrSharedMemorySize {
        es: "la memoria compartida '{name}' tiene {actual} bytes, no los {expected} pedidos \
             (proceso {pid}): conectate con SharedMemory::attach y leé .size(), o creala de \
             nuevo",
        en: "shared memory '{name}' holds {actual} bytes, not the {expected} asked for (process \
             {pid}): attach with SharedMemory::attach and read .size(), or recreate it"
    }
    /// `Error::PoolBroken`.
    ErrPoolBroken {
        es: "el pool del proceso {pid} no puede ejecutar tareas: {message}; creá un Pool nuevo",
        en: "the pool in process {pid} cannot run tasks: {message}; make a new Pool"
    }
    /// `Error::InvalidArgument`.
    ErrInvalidArgument {
        es: "argumento inválido en el proceso {pid}: {message}",
        en: "invalid argument in process {pid}: {message}"
    }

    // ---- the inner text of some errors (`message`, `reason`) ----
    /// An array too big.
    ArrayTooBig {
        es: "un arreglo de {len} elementos no entra en memoria",
        en: "an array of {len} elements does not fit in memory"
    }
    /// An index past the end.
    ArrayIndex {
        es: "el índice {index} está fuera de rango para un arreglo de largo {len}",
        en: "index {index} is out of bounds for an array of length {len}"
    }
    /// A barrier for nobody.
    BarrierParties {
        es: "una Barrier necesita al menos 1 participante",
        en: "a Barrier needs at least 1 party"
    }
    /// A pool without workers.
    PoolNeedsWorker {
        es: "un Pool necesita al menos 1 proceso trabajador",
        en: "a Pool needs at least 1 worker process"
    }
    /// `maxtasksperchild(0)`.
    MaxTasksPerChild {
        es: "maxtasksperchild tiene que ser al menos 1",
        en: "maxtasksperchild must be at least 1"
    }
    /// A worker that answered nothing.
    WorkerSentNoResult {
        es: "el trabajador no mandó ningún resultado",
        en: "the worker sent no result"
    }
    /// A replacement worker that could not start.
    ReplacementFailed {
        es: "no se pudo iniciar un trabajador de reemplazo: {error}",
        en: "a replacement worker could not be started: {error}"
    }
    /// The pool's result thread panicked.
    ResultThreadPanicked {
        es: "su hilo de resultados hizo panic: {message}",
        en: "its result thread panicked: {message}"
    }
    /// A worker gone before it was ready.
    WorkerEndedEarly {
        es: "el trabajador terminó {how} antes de estar listo",
        en: "the worker ended {how} before it was ready"
    }
    /// A callback waiting for a result.
    CallbackWaits {
        es: "un callback del pool no puede esperar un resultado del pool: corre en el hilo de \
             resultados del pool, que se estaría esperando a sí mismo (un interbloqueo); usá \
             el valor que recibe el callback",
        en: "a pool callback cannot wait for a pool result: it runs on the pool's result \
             thread, which would wait for itself; use the value the callback is given"
    }
    /// postcard cannot do what the type asks.
    CodecNotSelfDescribing {
        es: "el tipo usa una característica de serde que postcard, el formato compacto de \
             forja, no puede soportar porque no se autodescribe: #[serde(untagged)], \
             #[serde(flatten)], serde_json::Value u otro tipo que necesita deserialize_any; \
             usá un struct simple o un enum etiquetado externamente",
        en: "the type uses a serde feature that postcard, forja's compact format, cannot \
             support because it is not self-describing: #[serde(untagged)], \
             #[serde(flatten)], serde_json::Value or another type that needs \
             deserialize_any; use a plain struct or an externally tagged enum"
    }
    /// The type's own serde code failed.
    CodecCustom {
        es: "el error lo reportó el código Serialize/Deserialize del propio tipo (una impl \
             propia, o un atributo de serde como #[serde(try_from)])",
        en: "the type's own Serialize/Deserialize code reported this error (a custom impl, \
             or a serde attribute such as #[serde(try_from)])"
    }
    /// A sequence of unknown length.
    CodecSeqLength {
        es: "una secuencia sin largo conocido (un iterador serializado con collect_seq): \
             juntalo primero en un Vec",
        en: "a sequence without a known length (an iterator serialized with \
             collect_seq): collect it into a Vec first"
    }
    /// Bytes that do not fit the type.
    CodecDecode {
        es: "los bytes no corresponden al tipo esperado: fijate que los dos extremos usen el \
             mismo tipo de mensaje (postcard no guarda los tipos, así que una diferencia se \
             ve como bytes que se acaban o que no son válidos)",
        en: "the bytes do not fit the expected type: check that both ends use the same \
             message type (postcard does not store types, so a mismatch shows up as \
             running out of bytes or invalid ones)"
    }
    /// Any other codec error.
    CodecOther { es: "revisá el tipo del mensaje", en: "check the message type" }
    /// `input()`: no side channel.
    InputNoChannel {
        es: "no se puede llegar al canal lateral del kernel {path}: {error}",
        en: "the kernel's side channel {path} cannot be reached: {error}"
    }
    /// `input()`: the question could not be sent.
    InputSending {
        es: "mandando la pregunta al kernel: {error}",
        en: "sending the question to the kernel: {error}"
    }
    /// `input()`: the answer could not be read.
    InputReading {
        es: "leyendo la respuesta del kernel: {error}",
        en: "reading the kernel's answer: {error}"
    }
    /// `input()`: no answer.
    InputClosed {
        es: "el kernel cerró la pregunta sin respuesta (¿se interrumpió la celda, o se \
             reinició el kernel?)",
        en: "the kernel closed the question without an answer (was the cell interrupted, or \
             the kernel restarted?)"
    }
    /// `input()`: a garbled answer.
    InputNotUnderstood {
        es: "no se entiende la respuesta del kernel: {error}",
        en: "the kernel's answer is not understood: {error}"
    }
    /// `input()`: an empty answer.
    InputEmpty { es: "la respuesta del kernel está vacía", en: "the kernel's answer is empty" }
    /// `input()` in a terminal: stdin failed.
    InputStdin { es: "leyendo stdin: {error}", en: "reading stdin: {error}" }
    /// `input()` in a terminal: stdin at its end.
    InputEof {
        es: "stdin está cerrado (fin de archivo): no se puede escribir nada",
        en: "stdin is closed (end of file): nothing can be typed"
    }

    // ---- the fragments an error is built from (`what`, `state`, `action`) ----
    /// A pipe, as what was read.
    TermAPipe { es: "una tubería", en: "a pipe" }
    /// A queue.
    TermAQueue { es: "una cola", en: "a queue" }
    /// A pool worker, as what was read.
    TermAPoolWorker { es: "un trabajador del pool", en: "a pool worker" }
    /// A pool task.
    TermAPoolTask { es: "una tarea del pool", en: "a pool task" }
    /// A pool result.
    TermAPoolResult { es: "un resultado del pool", en: "a pool result" }
    /// Waiting for a pool result.
    TermWaitingPoolResult { es: "esperando un resultado del pool", en: "waiting for a pool result" }
    /// `as_completed`.
    TermAsCompleted {
        es: "as_completed: esperando futures",
        en: "as_completed: waiting for futures"
    }
    /// Receiving.
    TermReceivingPipe { es: "recibiendo de una tubería", en: "receiving from a pipe" }
    /// Acquiring a semaphore.
    TermAcquiringSemaphore { es: "tomando un Semaphore", en: "acquiring a Semaphore" }
    /// Acquiring a bounded semaphore.
    TermAcquiringBoundedSemaphore {
        es: "tomando un BoundedSemaphore",
        en: "acquiring a BoundedSemaphore"
    }
    /// Waiting for an event.
    TermWaitingEvent { es: "esperando un Event", en: "waiting for an Event" }
    /// Waiting at a barrier.
    TermWaitingBarrier { es: "esperando en una Barrier", en: "waiting at a Barrier" }
    /// Putting on a queue.
    TermPuttingQueue { es: "poniendo en una Queue", en: "putting on a Queue" }
    /// Getting from a queue.
    TermGettingQueue { es: "sacando de una Queue", en: "getting from a Queue" }
    /// Joining a joinable queue.
    TermJoiningQueue { es: "haciendo join de una JoinableQueue", en: "joining a JoinableQueue" }
    /// Waiting on a pipe.
    TermWaitingPipe { es: "esperando en una tubería (poll)", en: "waiting on a pipe (poll)" }
    /// Waiting for a process.
    TermWaitingProcess { es: "esperando un proceso (poll)", en: "waiting for a process (poll)" }
    /// Waiting on several things.
    TermWaitingSeveral { es: "esperando varias cosas (poll)", en: "waiting on several things (poll)" }
    /// Sending a signal.
    TermSendingSignal { es: "mandando una señal a un hijo", en: "sending a signal to a child" }
    /// A lock.
    TermALock { es: "un Lock", en: "a Lock" }
    /// An RLock.
    TermAnRLock { es: "un RLock", en: "an RLock" }
    /// A Value's lock.
    TermValueLock { es: "el lock de un Value", en: "a Value's lock" }
    /// An Array's lock.
    TermArrayLock { es: "el lock de un Array", en: "an Array's lock" }
    /// A Condition's lock.
    TermConditionLock { es: "el lock de una Condition", en: "a Condition's lock" }
    /// A SharedMemory's lock.
    TermSharedMemoryLock { es: "el lock de una SharedMemory", en: "a SharedMemory's lock" }
    /// A Barrier's lock.
    TermBarrierLock { es: "el lock interno de una Barrier", en: "a Barrier's internal lock" }
    /// A guard's hint.
    TermGuardReleased {
        es: "el lock se libera apenas se suelta el guard",
        en: "the lock is released as soon as the guard is dropped"
    }
    /// A pool's state.
    TermClosed { es: "cerrado", en: "closed" }
    /// A pool's state.
    TermTerminated { es: "terminado", en: "terminated" }
    /// A pool used from another process.
    TermOwnedElsewhere {
        es: "en manos de otro proceso (un pool solo funciona en el proceso que lo creó)",
        en: "owned by another process (a pool only works in the process that made it)"
    }
    /// Encoding.
    TermEncode { es: "codificar", en: "encode" }
    /// Decoding.
    TermDecode { es: "decodificar", en: "decode" }
    /// A join.
    TermJoin { es: "join", en: "join", same }
    /// A terminate.
    TermTerminate { es: "terminate", en: "terminate", same }
    /// A kill.
    TermKill { es: "kill", en: "kill", same }

    /// How a pool worker ended: a signal.
    HowKilled { es: "(lo mató la señal {signal})", en: "(killed by signal {signal})" }
    /// How a pool worker ended: an exit code.
    HowExitCode { es: "(código de salida {code})", en: "(exit code {code})" }
    /// How a pool worker ended: unknown.
    HowUnknown { es: "(no se sabe cómo terminó)", en: "(exit status unknown)" }

    // ---- displays ----
    /// Table header: a process's name.
    ColName { es: "nombre", en: "name" }
    /// Table header: its state.
    ColState { es: "estado", en: "state" }
    /// Table header: its exit code.
    ColExitCode { es: "código de salida", en: "exit code" }
    /// Table header: daemon.
    ColDaemon { es: "daemon", en: "daemon", same }
    /// Table header: a value.
    ColValue { es: "valor", en: "value" }
    /// Table header: queue size.
    ColQsize { es: "elementos", en: "qsize" }
    /// Table header: maxsize.
    ColMaxsize { es: "maxsize", en: "maxsize", same }
    /// Table header: closed?
    ColClosed { es: "cerrada", en: "closed" }
    /// Table header: unfinished tasks of a joinable queue.
    ColUnfinished { es: "tareas sin terminar", en: "unfinished tasks" }
    /// Table header: pool size.
    ColSize { es: "tamaño", en: "size" }
    /// Table header: workers' pids.
    ColWorkerPids { es: "pids de los trabajadores", en: "worker pids" }
    /// Table header: how many workers were started.
    ColWorkerStarts { es: "trabajadores iniciados", en: "worker_starts" }
    /// Table header: queued tasks.
    ColQueuedTasks { es: "tareas en cola", en: "queued tasks" }
    /// A process not started yet.
    StateInitial { es: "sin iniciar", en: "initial" }
    /// A process that ended.
    StateStopped { es: "terminado", en: "stopped" }
    /// A process running.
    StateRunning { es: "corriendo", en: "running" }
    /// A process started, not running.
    StateStarted { es: "iniciado", en: "started" }
    /// An exit code that is a signal.
    ExitSignal { es: "{code} (señal {signal})", en: "{code} (signal {signal})" }
    /// An array's caption.
    ArrayCaption { es: "{kind}<{type}>, {len} elementos", en: "{kind}<{type}>, {len} items" }
    /// Yes/no of "closed".
    Yes { es: "sí", en: "true" }
    /// Yes/no of "closed".
    No { es: "no", en: "false" }
    /// Progress: running.
    ProgressRunning { es: "{done} / {total} tareas, {secs} s", en: "{done} / {total} tasks, {secs} s" }
    /// Progress: finished.
    ProgressFinished {
        es: "{done} / {total} tareas, {how} en {secs} s",
        en: "{done} / {total} tasks, {how} in {secs} s"
    }
    /// Progress: how it ended.
    ProgressDone { es: "listo", en: "done" }
    /// Progress: how it ended.
    ProgressStopped { es: "detenido", en: "stopped" }
    /// Progress: how it ended.
    ProgressInterrupted { es: "interrumpido", en: "interrupted" }
    /// Timeline: its title's start.
    TimelineTitle { es: "línea de tiempo de forja", en: "forja timeline" }
    /// Timeline: the cell.
    TimelineCell { es: ", celda {cell}", en: ", cell {cell}" }
    /// Timeline: one process.
    TimelineOneProcess { es: ": 1 proceso, {ms} ms", en: ": 1 process, {ms} ms" }
    /// Timeline: processes.
    TimelineProcesses { es: ": {n} procesos, {ms} ms", en: ": {n} processes, {ms} ms" }
    /// Timeline: parallelism.
    TimelineAtOnce { es: ", como mucho {n} a la vez", en: ", at most {n} at once" }
    /// Timeline: one pool task.
    TimelineOneTask {
        es: "; 1 tarea del pool, como mucho {n} a la vez",
        en: "; 1 pool task, at most {n} at once"
    }
    /// Timeline: pool tasks.
    TimelineTasks {
        es: "; {tasks} tareas del pool, como mucho {n} a la vez",
        en: "; {tasks} pool tasks, at most {n} at once"
    }
    /// Timeline: events lost.
    TimelineLost {
        es: " (se perdieron {n} eventos viejos)",
        en: " ({n} older events lost)"
    }
    /// Timeline: nothing ran.
    TimelineEmpty { es: "no corrió ningún proceso", en: "no processes ran" }
    /// Timeline table: header.
    TimelineColName { es: "nombre", en: "name" }
    /// Timeline table: header.
    TimelineColStart { es: "inicio ms", en: "start ms" }
    /// Timeline table: header.
    TimelineColEnd { es: "fin ms", en: "end ms" }
    /// Timeline table: header.
    TimelineColExit { es: "salida", en: "exit" }
    /// Timeline: a lane still running.
    TimelineRunning { es: "corriendo", en: "running" }
    /// Timeline: a pool task's tooltip.
    TimelineTask { es: "tarea", en: "task" }
    /// Timeline: several merged tasks' tooltip.
    TimelineTasksMerged { es: "{count} tareas", en: "{count} tasks" }
    /// Timeline: a task's tooltip.
    TimelineTaskTitle { es: "{what} del trabajo {job}", en: "{what} of job {job}" }
}

/// `english`, one of the catalogue's English fragments (a `what` passed to
/// an error), in the current language; unknown text is returned as is.
///
/// ```
/// let _ = forja::messages::term("a pipe");
/// ```
pub fn term(english: &str) -> Cow<'_, str> {
    term_in(english, Lang::current())
}

impl Msg {
    /// Whether this entry is a fragment [`term`] translates (`Term…`).
    fn is_term(self) -> bool {
        format!("{self:?}").starts_with("Term")
    }
}

/// [`term`] in `lang`.
pub fn term_in(english: &str, lang: Lang) -> Cow<'_, str> {
    if lang == Lang::En {
        return Cow::Borrowed(english);
    }
    match Msg::ALL
        .iter()
        .find(|m| m.is_term() && m.both().1 == english)
    {
        Some(m) => Cow::Borrowed(m.text(lang)),
        None => Cow::Borrowed(english),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::placeholders;

    #[test]
    fn every_entry_has_both_languages() {
        for m in Msg::ALL {
            let (es, en) = m.both();
            assert!(
                !es.trim().is_empty() && !en.trim().is_empty(),
                "{m:?} is empty"
            );
            assert_eq!(
                es == en,
                m.same_on_purpose(),
                "{m:?}: Spanish and English must differ unless marked `same`"
            );
            assert_eq!(
                placeholders(es),
                placeholders(en),
                "{m:?}: placeholders differ"
            );
        }
    }

    #[test]
    fn english_fragments_are_unique() {
        let terms: Vec<Msg> = Msg::ALL.iter().copied().filter(|m| m.is_term()).collect();
        for (i, a) in terms.iter().enumerate() {
            for b in &terms[i + 1..] {
                assert_ne!(a.both().1, b.both().1, "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn terms_translate() {
        assert_eq!(term_in("a pipe", Lang::Es), "una tubería");
        assert_eq!(term_in("a pipe", Lang::En), "a pipe");
        assert_eq!(term_in("mmap", Lang::Es), "mmap");
    }
}
