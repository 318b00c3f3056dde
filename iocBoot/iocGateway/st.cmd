#!../../bin/linux-x86_64/gateway
# Example start-up of the ready gateway IOC:  cd iocBoot/iocGateway; ../../bin/<arch>/gateway st.cmd
< envPaths

cd "${TOP}"
dbLoadDatabase "dbd/gatewayIoc.dbd"
gatewayIoc_registerRecordDeviceDriver pdbbase

cd "${TOP}/iocBoot/${IOC}"
iocInit

gwVersion
