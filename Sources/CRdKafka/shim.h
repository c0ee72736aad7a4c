#ifndef CLEARWAY_CRDKAFKA_SHIM_H
#define CLEARWAY_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// Produces one message through the array form of rd_kafka_producev (no variadic call from Swift),
/// to a topic handle the caller keeps (no lookup of the topic by name per message).
/// The key, value and header bytes are copied. `headers` (may be NULL) is owned by librdkafka on
/// success and destroyed here on failure. Returns RD_KAFKA_RESP_ERR_NO_ERROR or the error code.
static inline rd_kafka_resp_err_t clearway_produce(rd_kafka_t *rk, rd_kafka_topic_t *topic,
                                                   int32_t partition, const void *key,
                                                   size_t key_len, const void *value,
                                                   size_t value_len, rd_kafka_headers_t *headers,
                                                   void *opaque, int64_t timestamp_ms) {
    rd_kafka_vu_t vus[8];
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_RKT;
    vus[n++].u.rkt = topic;
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = partition;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = (void *)value;
    vus[n++].u.mem.size = value_len;
    if (key != NULL) {
        vus[n].vtype = RD_KAFKA_VTYPE_KEY;
        vus[n].u.mem.ptr = (void *)key;
        vus[n++].u.mem.size = key_len;
    }
    if (headers != NULL) {
        vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
        vus[n++].u.headers = headers;
    }
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = opaque;
    if (timestamp_ms > 0) {
        vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
        vus[n++].u.i64 = timestamp_ms;
    }
    rd_kafka_error_t *error = rd_kafka_produceva(rk, vus, n);
    if (error == NULL) {
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    if (headers != NULL) {
        rd_kafka_headers_destroy(headers);
    }
    return code;
}

/// The message's per-message opaque (`_private`), which Swift cannot name.
static inline void *clearway_message_opaque(const rd_kafka_message_t *message) {
    return message->_private;
}

#endif
