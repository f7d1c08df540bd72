# Copyright (c) 2016 Uber Technologies, Inc. (MIT License, see jaeger-idl)
#
# jaeger-idl thrift/agent.thrift, reduced to the `emitBatch` method: `emitZipkinBatch` and the
# `zipkincore.thrift` include it needs are left out, since spanpipe takes Jaeger batches only.

include "jaeger.thrift"

namespace cpp jaegertracing.agent.thrift
namespace java com.uber.jaeger.agent.thrift

service Agent {
    oneway void emitBatch(1: jaeger.Batch batch)
}
