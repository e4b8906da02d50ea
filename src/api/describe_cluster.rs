//! DescribeCluster (key 60): the cluster id, the controller and the brokers (this one, or every live one in cluster mode).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::metadata::cluster_authorized_operations;
use super::RequestContext;
use crate::broker::Broker;

/// Kafka's `EndpointType`.
const BROKERS: i8 = 1;
const CONTROLLERS: i8 = 2;

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    if ctx.version >= 1 && request.endpoint_type != BROKERS {
        // As a Kafka broker answers: controllers are asked on the controller listener.
        let (error, message) = if request.endpoint_type == CONTROLLERS {
            (
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )
        } else {
            (
                ResponseError::UnsupportedEndpointType,
                "Unsupported endpoint type",
            )
        };
        return DescribeClusterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_static_str(message)));
    }
    DescribeClusterResponse::default()
        .with_endpoint_type(BROKERS)
        .with_cluster_id(StrBytes::from_string(broker.cluster_id().to_string()))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_brokers(
            broker
                .brokers(ctx.listener)
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.node_id))
                        .with_host(StrBytes::from_string(b.host))
                        .with_port(i32::from(b.port))
                        .with_rack(b.rack.map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            cluster_authorized_operations(&broker, &ctx)
        } else {
            i32::MIN
        })
}
